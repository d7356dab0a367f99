/* SPDX-License-Identifier: MIT */
/*
 * protocol.h - numbers of the libvirt remote wire protocol that samepage
 * speaks: programs, message types, procedure numbers, limits, error codes,
 * feature numbers and flag bits.
 *
 * Values are facts about the protocol (libvirt-wire.md, libvirt's .x files
 * and public headers), written down here by hand; only what the endpoint
 * uses is listed.  Pure constants: no state, no locking.
 */
#pragma once

/* Programs and versions. */
#define SP_LV_REMOTE_PROGRAM    0x20008086u
#define SP_LV_REMOTE_VERSION    1u
#define SP_LV_KEEPALIVE_PROGRAM 0x6b656570u /* "keep" */
#define SP_LV_KEEPALIVE_VERSION 1u
#define SP_LV_KEEPALIVE_PING    1
#define SP_LV_KEEPALIVE_PONG    2

/* Header message types and status. */
enum {
    SP_LV_CALL = 0,
    SP_LV_REPLY = 1,
    SP_LV_MESSAGE = 2,
    SP_LV_STREAM = 3,
    SP_LV_CALL_WITH_FDS = 4,
    SP_LV_REPLY_WITH_FDS = 5,
    SP_LV_STREAM_HOLE = 6,
};
enum { SP_LV_STATUS_OK = 0, SP_LV_STATUS_ERROR = 1, SP_LV_STATUS_CONTINUE = 2 };

/* Framing. */
#define SP_LV_LEN_SIZE            4u         /* the length word, counted in the length */
#define SP_LV_HEADER_SIZE         24u        /* prog, vers, proc, type, serial, status */
#define SP_LV_MESSAGE_MAX         33554432u  /* clients refuse larger packets */
#define SP_LV_INBOUND_MAX_DEFAULT (1u << 20) /* our default limit on calls */

/* Limits from remote_protocol.x / virnetprotocol.x. */
#define SP_LV_STRING_MAX                   4194304u
#define SP_LV_DOMAIN_LIST_MAX              16384u
#define SP_LV_NODE_MEMORY_PARAMETERS_MAX   64u
#define SP_LV_DOMAIN_MEMORY_PARAMETERS_MAX 16
#define SP_LV_DOMAIN_NUMA_PARAMETERS_MAX   16
/* VIR_DOMAIN_MEMORY_PARAM_UNLIMITED: a memtune limit that is not set (KiB) */
#define SP_LV_MEMORY_PARAM_UNLIMITED   9007199254740991ULL
#define SP_LV_NODE_MEMORY_STATS_MAX    16u
#define SP_LV_DOMAIN_MEMORY_STATS_MAX  1024u
#define SP_LV_GET_ALL_DOMAIN_STATS_MAX 262144u
#define SP_LV_AUTH_TYPE_LIST_MAX       20u
#define SP_LV_SECURITY_MODEL_MAX       256u /* VIR_SECURITY_MODEL_BUFLEN - 1 */
#define SP_LV_DOMAIN_MESSAGES_MAX      2048u
#define SP_LV_TYPED_PARAM_FIELD_LENGTH 80u /* field must be shorter */
#define SP_LV_NODE_INFO_MODEL_LEN      32u
#define SP_LV_CPUMAP_MAX               2048u    /* one cpumap (bytes) */
#define SP_LV_VCPUINFO_MAX             16384u   /* remote_vcpu_info info<> */
#define SP_LV_CPUMAPS_MAX              8388608u /* all cpumaps of one reply (bytes) */
#define SP_LV_UUID_LEN                 16u
/* Our own bound on a typed-parameter field read from the wire. */
#define SP_LV_FIELD_READ_MAX 256u

/* Procedures (REMOTE_PROC_*) that the endpoint implements. */
enum {
    SP_LV_PROC_CONNECT_OPEN = 1,
    SP_LV_PROC_CONNECT_CLOSE = 2,
    SP_LV_PROC_CONNECT_GET_TYPE = 3,
    SP_LV_PROC_CONNECT_GET_VERSION = 4,
    SP_LV_PROC_CONNECT_GET_MAX_VCPUS = 5,
    SP_LV_PROC_NODE_GET_INFO = 6,
    SP_LV_PROC_CONNECT_GET_CAPABILITIES = 7,
    SP_LV_PROC_DOMAIN_CREATE = 9,
    SP_LV_PROC_DOMAIN_CREATE_XML = 10,
    SP_LV_PROC_DOMAIN_DEFINE_XML = 11,
    SP_LV_PROC_DOMAIN_DESTROY = 12,
    SP_LV_PROC_DOMAIN_GET_XML_DESC = 14,
    SP_LV_PROC_DOMAIN_GET_AUTOSTART = 15,
    SP_LV_PROC_DOMAIN_GET_INFO = 16,
    SP_LV_PROC_DOMAIN_GET_MAX_MEMORY = 17,
    SP_LV_PROC_DOMAIN_GET_MAX_VCPUS = 18,
    SP_LV_PROC_DOMAIN_GET_OS_TYPE = 19,
    SP_LV_PROC_DOMAIN_GET_VCPUS = 20,
    SP_LV_PROC_CONNECT_LIST_DEFINED_DOMAINS = 21,
    SP_LV_PROC_DOMAIN_LOOKUP_BY_ID = 22,
    SP_LV_PROC_DOMAIN_LOOKUP_BY_NAME = 23,
    SP_LV_PROC_DOMAIN_LOOKUP_BY_UUID = 24,
    SP_LV_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS = 25,
    SP_LV_PROC_DOMAIN_REBOOT = 27,
    SP_LV_PROC_DOMAIN_RESUME = 28,
    SP_LV_PROC_DOMAIN_SET_AUTOSTART = 29,
    SP_LV_PROC_DOMAIN_SHUTDOWN = 33,
    SP_LV_PROC_DOMAIN_SUSPEND = 34,
    SP_LV_PROC_DOMAIN_UNDEFINE = 35,
    SP_LV_PROC_CONNECT_LIST_DOMAINS = 37,
    SP_LV_PROC_CONNECT_NUM_OF_DOMAINS = 51,
    SP_LV_PROC_CONNECT_GET_HOSTNAME = 59,
    SP_LV_PROC_CONNECT_SUPPORTS_FEATURE = 60,
    SP_LV_PROC_DOMAIN_BLOCK_STATS = 64,
    SP_LV_PROC_DOMAIN_INTERFACE_STATS = 65,
    SP_LV_PROC_AUTH_LIST = 66,
    SP_LV_PROC_STORAGE_POOL_GET_INFO = 87,
    SP_LV_PROC_NODE_GET_CELLS_FREE_MEMORY = 101,
    SP_LV_PROC_NODE_GET_FREE_MEMORY = 102,
    SP_LV_PROC_CONNECT_GET_URI = 110,
    SP_LV_PROC_NODE_GET_SECURITY_MODEL = 122,
    SP_LV_PROC_DOMAIN_IS_ACTIVE = 150,
    SP_LV_PROC_DOMAIN_IS_PERSISTENT = 151,
    SP_LV_PROC_CONNECT_GET_LIB_VERSION = 157,
    SP_LV_PROC_DOMAIN_MEMORY_STATS = 159,
    SP_LV_PROC_DOMAIN_GET_JOB_INFO = 163,
    SP_LV_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE = 183,
    SP_LV_PROC_DOMAIN_CREATE_WITH_FLAGS = 196,
    SP_LV_PROC_DOMAIN_GET_VCPUS_FLAGS = 200,
    SP_LV_PROC_DOMAIN_GET_STATE = 212,
    SP_LV_PROC_NODE_GET_CPU_STATS = 227,
    SP_LV_PROC_NODE_GET_MEMORY_STATS = 228,
    SP_LV_PROC_DOMAIN_GET_VCPU_PIN_INFO = 230,
    SP_LV_PROC_DOMAIN_UNDEFINE_FLAGS = 231,
    SP_LV_PROC_DOMAIN_DESTROY_FLAGS = 234,
    SP_LV_PROC_DOMAIN_RESET = 245,
    SP_LV_PROC_DOMAIN_SHUTDOWN_FLAGS = 258,
    SP_LV_PROC_CONNECT_LIST_ALL_DOMAINS = 273,
    SP_LV_PROC_CONNECT_LIST_ALL_STORAGE_POOLS = 281,
    SP_LV_PROC_DOMAIN_SET_MEMORY_PARAMETERS = 197,
    SP_LV_PROC_DOMAIN_GET_MEMORY_PARAMETERS = 198,
    SP_LV_PROC_DOMAIN_SET_NUMA_PARAMETERS = 254,
    SP_LV_PROC_DOMAIN_GET_NUMA_PARAMETERS = 255,
    SP_LV_PROC_NODE_SET_MEMORY_PARAMETERS = 288,
    SP_LV_PROC_NODE_GET_MEMORY_PARAMETERS = 289,
    SP_LV_PROC_NODE_GET_CPU_MAP = 293,
    SP_LV_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = 316,
    SP_LV_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = 317,
    SP_LV_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE = 318, /* server -> client (MESSAGE) */
    SP_LV_PROC_DOMAIN_EVENT_CALLBACK_REBOOT = 319,    /* server -> client (MESSAGE) */
    SP_LV_PROC_CONNECT_GET_DOMAIN_CAPABILITIES = 342,
    SP_LV_PROC_CONNECT_GET_ALL_DOMAIN_STATS = 344,
    SP_LV_PROC_DOMAIN_DEFINE_XML_FLAGS = 350,
    SP_LV_PROC_CONNECT_REGISTER_CLOSE_CALLBACK = 360,
    SP_LV_PROC_CONNECT_UNREGISTER_CLOSE_CALLBACK = 361,
    SP_LV_PROC_DOMAIN_GET_MESSAGES = 426,
};

/* virErrorNumber values (include/libvirt/virterror.h). */
enum {
    SP_LV_ERR_INTERNAL_ERROR = 1,
    SP_LV_ERR_NO_SUPPORT = 3,
    SP_LV_ERR_INVALID_ARG = 8,
    SP_LV_ERR_OPERATION_FAILED = 9,
    SP_LV_ERR_XML_ERROR = 27,
    SP_LV_ERR_DOM_EXIST = 28,
    SP_LV_ERR_OPERATION_DENIED = 29,
    SP_LV_ERR_RPC = 39,
    SP_LV_ERR_NO_DOMAIN = 42,
    SP_LV_ERR_AUTH_FAILED = 45,
    SP_LV_ERR_OPERATION_INVALID = 55,
    SP_LV_ERR_CONFIG_UNSUPPORTED = 67,
    SP_LV_ERR_OPERATION_TIMEOUT = 68,
    SP_LV_ERR_OPERATION_UNSUPPORTED = 84,
    SP_LV_ERR_ACCESS_DENIED = 88,
};
/* virErrorDomain values. */
enum {
    SP_LV_FROM_NONE = 0,
    SP_LV_FROM_RPC = 7,
    SP_LV_FROM_REMOTE = 13,
    SP_LV_FROM_DOMAIN = 20,
};
#define SP_LV_ERR_LEVEL_ERROR 2

/* CONNECT_SUPPORTS_FEATURE numbers (src/libvirt_internal.h). */
enum {
    SP_LV_FEATURE_TYPED_PARAM_STRING = 9,
    SP_LV_FEATURE_PROGRAM_KEEPALIVE = 10,
    SP_LV_FEATURE_REMOTE_EVENT_CALLBACK = 14,
    SP_LV_FEATURE_REMOTE_CLOSE_CALLBACK = 15,
};

/* CONNECT_OPEN flags. */
#define SP_LV_CONNECT_RO 1u
/* typed-parameter flag of the GET calls. */
#define SP_LV_TYPED_PARAM_STRING_OKAY     4u
#define SP_LV_NODE_MEMORY_STATS_ALL_CELLS (-1)
/* REMOTE_NODE_MAX_CELLS: the longest NODE_GET_CELLS_FREE_MEMORY reply. */
#define SP_LV_NODE_MAX_CELLS 1024

/* virConnectListAllDomainsFlags (the filters we honour). */
enum {
    SP_LV_LIST_ACTIVE = 1u << 0,
    SP_LV_LIST_INACTIVE = 1u << 1,
    SP_LV_LIST_PERSISTENT = 1u << 2,
    SP_LV_LIST_TRANSIENT = 1u << 3,
    SP_LV_LIST_RUNNING = 1u << 4,
    SP_LV_LIST_PAUSED = 1u << 5,
    SP_LV_LIST_SHUTOFF = 1u << 6,
    SP_LV_LIST_OTHER = 1u << 7,
};

/* samepage's private program on the same socket (docs/libvirt.md,
 * "The samepage program"): calls libvirt has no procedure for. */
#define SP_LV_SAMEPAGE_PROGRAM 0x53504745u /* "SPGE" */
#define SP_LV_SAMEPAGE_VERSION 1u
enum {
    SP_LV_SAMEPAGE_PROC_CLONE = 1,        /* {name, count, names<>} -> {children<>} */
    SP_LV_SAMEPAGE_PROC_CLONE_GROUPS = 2, /* {flags} -> {groups<>}, each a typed-param list */
};
#define SP_LV_CLONE_NAMES_MAX    64u   /* names<> and children<> (SP_VM_CLONE_MAX) */
#define SP_LV_CLONE_NAME_MAX     200u  /* one clone name's bytes */
#define SP_LV_CLONE_GROUPS_MAX   4096u /* groups<> */
#define SP_LV_CLONE_GROUP_PARAMS 16u   /* params<> of one group */

/* virDomainModificationImpact and virDomainVcpuFlags (GET_VCPUS_FLAGS,
 * GET_VCPU_PIN_INFO). */
enum {
    SP_LV_AFFECT_LIVE = 1u << 0,   /* the running domain (CURRENT = 0: whichever it is) */
    SP_LV_AFFECT_CONFIG = 1u << 1, /* its definition */
    SP_LV_VCPU_MAXIMUM = 1u << 2,  /* the most vCPUs it may have, not those it has */
    SP_LV_VCPU_GUEST = 1u << 3,    /* as its guest agent sees them (none here) */
};
/* virVcpuState */
enum { SP_LV_VCPU_OFFLINE = 0, SP_LV_VCPU_RUNNING = 1, SP_LV_VCPU_BLOCKED = 2 };
/* virNodeGetCPUStats: all CPUs */
#define SP_LV_NODE_CPU_STATS_ALL_CPUS (-1)

/* Domain events (virDomainEventID): the ones samepaged sends.  Any ID
 * libvirt 9.0 knows (0 .. SP_LV_EVENT_ID_LAST - 1) can be registered. */
enum {
    SP_LV_EVENT_ID_LIFECYCLE = 0,
    SP_LV_EVENT_ID_REBOOT = 1,
    SP_LV_EVENT_ID_LAST = 27, /* VIR_DOMAIN_EVENT_ID_LAST of libvirt 9.0 */
};
/* virDomainEventType, and the details samepaged uses (virDomainEvent*DetailType). */
typedef enum {
    SP_LV_EVENT_DEFINED = 0,
    SP_LV_EVENT_UNDEFINED = 1,
    SP_LV_EVENT_STARTED = 2,
    SP_LV_EVENT_SUSPENDED = 3,
    SP_LV_EVENT_RESUMED = 4,
    SP_LV_EVENT_STOPPED = 5,
    SP_LV_EVENT_SHUTDOWN = 6,
    SP_LV_EVENT_PMSUSPENDED = 7,
    SP_LV_EVENT_CRASHED = 8,
} SpLvEventType;
enum {
    SP_LV_DEFINED_ADDED = 0,
    SP_LV_DEFINED_UPDATED = 1,
    SP_LV_UNDEFINED_REMOVED = 0,
    SP_LV_STARTED_BOOTED = 0,
    SP_LV_SUSPENDED_PAUSED = 0,
    SP_LV_RESUMED_UNPAUSED = 0,
    SP_LV_STOPPED_SHUTDOWN = 0,
    SP_LV_STOPPED_DESTROYED = 1,
    SP_LV_STOPPED_CRASHED = 2,
    SP_LV_STOPPED_FAILED = 5,
    SP_LV_SHUTDOWN_FINISHED = 0,
    SP_LV_SHUTDOWN_GUEST = 1,
    SP_LV_SHUTDOWN_HOST = 2,
    SP_LV_CRASHED_PANICKED = 0,
};
/* Most event callbacks one connection may register. */
#define SP_LV_EVENT_CALLBACKS_MAX 256u
