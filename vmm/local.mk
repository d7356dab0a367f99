# vmm/
