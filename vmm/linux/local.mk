# vmm/linux/ fragment
