# rmap/ - see Makefile.am
