# bench/ - see Makefile.am
