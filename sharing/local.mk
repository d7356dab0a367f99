# sharing/ - see Makefile.am
