# vmm/libvirt/ fragment
