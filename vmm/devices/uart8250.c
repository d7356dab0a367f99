/* SPDX-License-Identifier: MIT */
/* uart8250.c - the 16550-style serial port (see uart8250.h). */
#include <string.h>

#include "vmm/devices/uart8250.h"

enum {
    REG_RBR_THR = 0, /* DLAB=0: receive buffer / transmit holding; DLAB=1: DLL */
    REG_IER = 1,     /* DLAB=0: interrupt enable; DLAB=1: DLM */
    REG_IIR_FCR = 2, /* read: interrupt identification; write: FIFO control */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_RDI         0x01 /* data-ready interrupt */
#define IER_THRI        0x02 /* THR-empty interrupt */
#define IIR_NONE        0x01
#define IIR_THRI        0x02
#define IIR_RDI         0x04
#define IIR_FIFO        0xc0
#define LCR_DLAB        0x80
#define LSR_DR          0x01
#define LSR_THRE        0x20
#define LSR_TEMT        0x40
#define MCR_LOOP        0x10
#define MSR_DCD_DSR_CTS 0xb0

struct SpUart {
    GMutex lock;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    bool thri_pending; /* THR-empty interrupt raised, not yet read from IIR */
    int irq_level;     /* last level given to the irq callback */
    char line[SP_UART_LINE_MAX + 1];
    size_t line_len;
    uint8_t rx[SP_UART_RX_MAX]; /* ring of bytes for the guest */
    size_t rx_head, rx_len;
    SpUartLineFn line_fn;
    SpUartIrqFn irq_fn;
    void *opaque;
};

SpUart *sp_uart_new(SpUartLineFn line, SpUartIrqFn irq, void *opaque)
{
    SpUart *u = g_new0(SpUart, 1);
    g_mutex_init(&u->lock);
    u->line_fn = line;
    u->irq_fn = irq;
    u->opaque = opaque;
    u->dll = 1; /* 115200 baud */
    return u;
}

void sp_uart_free(SpUart *u)
{
    if (!u)
        return;
    g_mutex_clear(&u->lock);
    g_free(u);
}

/* Called with the lock held: which interrupt is pending now. */
static uint8_t uart_iir(SpUart *u)
{
    if ((u->ier & IER_RDI) && u->rx_len)
        return IIR_RDI;
    if ((u->ier & IER_THRI) && u->thri_pending)
        return IIR_THRI;
    return IIR_NONE;
}

/* Take the line out of the buffer (lock held); the caller emits it unlocked. */
static char *uart_take_line(SpUart *u)
{
    u->line[u->line_len] = 0;
    char *s = g_strdup(u->line);
    u->line_len = 0;
    return s;
}

bool sp_uart_io(void *opaque, uint16_t port, uint8_t *data, uint32_t size, bool is_write)
{
    SpUart *u = opaque;
    unsigned reg = port & 7;
    g_autofree char *emit = NULL;
    int level;

    g_mutex_lock(&u->lock);
    if (is_write) {
        uint8_t v = data[0];
        switch (reg) {
        case REG_RBR_THR:
            if (u->lcr & LCR_DLAB) {
                u->dll = v;
            } else if (u->mcr & MCR_LOOP) {
                if (u->rx_len < SP_UART_RX_MAX)
                    u->rx[(u->rx_head + u->rx_len++) % SP_UART_RX_MAX] = v;
            } else {
                if (v == '\n') {
                    emit = uart_take_line(u);
                } else if (v != '\r') {
                    u->line[u->line_len++] = (char)v;
                    if (u->line_len == SP_UART_LINE_MAX)
                        emit = uart_take_line(u);
                }
                u->thri_pending = true;
            }
            break;
        case REG_IER:
            if (u->lcr & LCR_DLAB) {
                u->dlm = v;
            } else {
                /* Enabling THRI with an empty THR raises it at once, as on hardware. */
                if ((v & IER_THRI) && !(u->ier & IER_THRI))
                    u->thri_pending = true;
                u->ier = v & 0x0f;
            }
            break;
        case REG_IIR_FCR:
            u->fcr = v;
            if (v & 0x02) /* clear receive FIFO */
                u->rx_len = 0;
            break;
        case REG_LCR:
            u->lcr = v;
            break;
        case REG_MCR:
            u->mcr = v & 0x1f;
            break;
        case REG_SCR:
            u->scr = v;
            break;
        default: /* LSR and MSR are read-only */
            break;
        }
    } else {
        uint8_t v = 0;
        switch (reg) {
        case REG_RBR_THR:
            if (u->lcr & LCR_DLAB) {
                v = u->dll;
            } else if (u->rx_len) {
                v = u->rx[u->rx_head];
                u->rx_head = (u->rx_head + 1) % SP_UART_RX_MAX;
                u->rx_len--;
            }
            break;
        case REG_IER:
            v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
            break;
        case REG_IIR_FCR:
            v = uart_iir(u);
            if (v == IIR_THRI)
                u->thri_pending = false; /* reading IIR acknowledges THRI */
            if (u->fcr & 0x01)
                v |= IIR_FIFO;
            break;
        case REG_LCR:
            v = u->lcr;
            break;
        case REG_MCR:
            v = u->mcr;
            break;
        case REG_LSR:
            v = LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0);
            break;
        case REG_MSR:
            v = (u->mcr & MCR_LOOP) ? (uint8_t)((u->mcr & 0x0f) << 4) : MSR_DCD_DSR_CTS;
            break;
        case REG_SCR:
            v = u->scr;
            break;
        }
        memset(data, 0, size);
        data[0] = v;
    }
    level = uart_iir(u) != IIR_NONE;
    /* The line level is set under the lock: two vCPUs must not deliver
     * their levels to the irqchip out of order. */
    if (u->irq_fn && level != u->irq_level)
        u->irq_fn(u->opaque, level);
    u->irq_level = level;
    g_mutex_unlock(&u->lock);

    if (emit && u->line_fn)
        u->line_fn(u->opaque, emit);
    return true;
}

size_t sp_uart_input(SpUart *u, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    g_mutex_lock(&u->lock);
    while (n < len && u->rx_len < SP_UART_RX_MAX) {
        u->rx[(u->rx_head + u->rx_len++) % SP_UART_RX_MAX] = buf[n++];
    }
    int level = uart_iir(u) != IIR_NONE;
    if (u->irq_fn && level != u->irq_level)
        u->irq_fn(u->opaque, level);
    u->irq_level = level;
    g_mutex_unlock(&u->lock);
    return n;
}

void sp_uart_flush(SpUart *u)
{
    g_autofree char *emit = NULL;
    g_mutex_lock(&u->lock);
    if (u->line_len)
        emit = uart_take_line(u);
    g_mutex_unlock(&u->lock);
    if (emit && u->line_fn)
        u->line_fn(u->opaque, emit);
}
