# tests/emuhost/ fragment
