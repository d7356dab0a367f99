include tests/emuhost/local.mk
