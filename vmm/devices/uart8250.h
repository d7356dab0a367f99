/* SPDX-License-Identifier: MIT */
/*
 * uart8250.h - a 16550-compatible UART (the PC's COM1 at 0x3f8, IRQ 4).
 *
 * Transmit: bytes the guest writes to THR are gathered into lines; each
 * complete line (or a full 1 KiB buffer) goes to the `line` callback with
 * '\r' removed.  The transmitter is infinitely fast: LSR always reports THR
 * empty.  Receive: sp_uart_input() queues host bytes for the guest (RBR).
 * Interrupts: "THR empty" and "data ready", enabled by IER, are signalled
 * through the `irq` callback with the current level (the VMM forwards it to
 * the in-kernel irqchip); without a callback the UART is polled only.
 *
 * Locking: uart->lock protects all registers and the buffers.  The line
 * callback is called with it released; the irq callback with it held, so
 * that levels reach the interrupt controller in the order they changed (it
 * must not call back into the UART).
 */
#ifndef SAMEPAGE_VMM_UART8250_H
#define SAMEPAGE_VMM_UART8250_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define SP_UART_COM1_BASE 0x3f8
#define SP_UART_COM1_IRQ  4
#define SP_UART_LINE_MAX  1024
#define SP_UART_RX_MAX    4096

typedef struct SpUart SpUart;

typedef void (*SpUartLineFn)(void *opaque, const char *line);
typedef void (*SpUartIrqFn)(void *opaque, int level);

SpUart *sp_uart_new(SpUartLineFn line, SpUartIrqFn irq, void *opaque);
void sp_uart_free(SpUart *uart);

/* The I/O handler (signature of SpIoHandler), `port` relative or absolute. */
bool sp_uart_io(void *uart, uint16_t port, uint8_t *data, uint32_t size, bool is_write);

/* Queue input bytes; returns how many fit. */
size_t sp_uart_input(SpUart *uart, const uint8_t *buf, size_t len);

/* Emit any partial line still buffered (at VM exit). */
void sp_uart_flush(SpUart *uart);

#endif
