# vmm/metrics/ - every figure in one table (figures.c), snapshots of them
# (snapshot.c), and their printers: Prometheus text and its HTTP endpoint
# (prom.c, endpoint.c, libsoup), JSON (json.c, json-glib).
libvmm_a_SOURCES += \
	vmm/metrics/figures.c vmm/metrics/figures.h \
	vmm/metrics/snapshot.c vmm/metrics/snapshot.h \
	vmm/metrics/prom.c vmm/metrics/prom.h \
	vmm/metrics/endpoint.c vmm/metrics/endpoint.h \
	vmm/metrics/json.c vmm/metrics/json.h
