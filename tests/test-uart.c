/* SPDX-License-Identifier: MIT */
/* test-uart.c - the 8250: lines out, registers, input, interrupts. */
#include <string.h>

#include "vmm/devices/uart8250.h"

typedef struct Sink {
    GPtrArray *lines;
    int irq_level;
    int irq_changes;
} Sink;

static void on_line(void *opaque, const char *line)
{
    Sink *s = opaque;
    g_ptr_array_add(s->lines, g_strdup(line));
}

static void on_irq(void *opaque, int level)
{
    Sink *s = opaque;
    s->irq_level = level;
    s->irq_changes++;
}

static void wr(SpUart *u, unsigned reg, uint8_t v)
{
    sp_uart_io(u, SP_UART_COM1_BASE + reg, &v, 1, true);
}

static uint8_t rd(SpUart *u, unsigned reg)
{
    uint8_t v = 0;
    sp_uart_io(u, SP_UART_COM1_BASE + reg, &v, 1, false);
    return v;
}

static void test_lines(void)
{
    Sink s = {.lines = g_ptr_array_new_with_free_func(g_free)};
    SpUart *u = sp_uart_new(on_line, NULL, &s);
    for (const char *p = "hello\r\nworld\npartial"; *p; p++)
        wr(u, 0, (uint8_t)*p);
    g_assert_cmpuint(s.lines->len, ==, 2);
    g_assert_cmpstr(s.lines->pdata[0], ==, "hello"); /* \r dropped */
    g_assert_cmpstr(s.lines->pdata[1], ==, "world");
    sp_uart_flush(u);
    g_assert_cmpuint(s.lines->len, ==, 3);
    g_assert_cmpstr(s.lines->pdata[2], ==, "partial");
    /* an over-long line is cut into buffer-sized pieces, nothing lost */
    for (int i = 0; i < SP_UART_LINE_MAX + 10; i++)
        wr(u, 0, 'x');
    wr(u, 0, '\n');
    g_assert_cmpuint(s.lines->len, ==, 5);
    g_assert_cmpuint(strlen(s.lines->pdata[3]), ==, SP_UART_LINE_MAX);
    g_assert_cmpuint(strlen(s.lines->pdata[4]), ==, 10);
    sp_uart_free(u);
    g_ptr_array_free(s.lines, TRUE);
}

static void test_registers(void)
{
    Sink s = {.lines = g_ptr_array_new_with_free_func(g_free)};
    SpUart *u = sp_uart_new(on_line, NULL, &s);
    g_assert_cmpuint(rd(u, 5) & 0x60, ==, 0x60); /* THR empty, transmitter empty */
    g_assert_cmpuint(rd(u, 5) & 0x01, ==, 0);    /* no data */
    wr(u, 7, 0x5a);
    g_assert_cmpuint(rd(u, 7), ==, 0x5a); /* scratch */
    wr(u, 3, 0x80);                       /* DLAB */
    wr(u, 0, 0x0c);
    wr(u, 1, 0x00);
    g_assert_cmpuint(rd(u, 0), ==, 0x0c); /* divisor latch, not data */
    wr(u, 3, 0x03);                       /* 8N1 */
    g_assert_cmpuint(rd(u, 3), ==, 0x03);
    g_assert_cmpuint(s.lines->len, ==, 0); /* divisor writes are not output */
    /* loopback: what is sent comes back as input */
    wr(u, 4, 0x10);
    wr(u, 0, 'Z');
    g_assert_cmpuint(rd(u, 5) & 0x01, ==, 1);
    g_assert_cmpuint(rd(u, 0), ==, 'Z');
    sp_uart_free(u);
    g_ptr_array_free(s.lines, TRUE);
}

static void test_input_irq(void)
{
    Sink s = {.lines = g_ptr_array_new_with_free_func(g_free)};
    SpUart *u = sp_uart_new(on_line, on_irq, &s);
    wr(u, 1, 0x01); /* data-ready interrupt */
    g_assert_cmpint(s.irq_level, ==, 0);
    g_assert_cmpuint(sp_uart_input(u, (const uint8_t *)"ab", 2), ==, 2);
    g_assert_cmpint(s.irq_level, ==, 1);
    g_assert_cmpuint(rd(u, 2) & 0x0f, ==, 0x04); /* IIR: data ready */
    g_assert_cmpuint(rd(u, 0), ==, 'a');
    g_assert_cmpint(s.irq_level, ==, 1);
    g_assert_cmpuint(rd(u, 0), ==, 'b');
    g_assert_cmpint(s.irq_level, ==, 0);
    g_assert_cmpuint(rd(u, 2) & 0x0f, ==, 0x01); /* none pending */
    /* THR-empty interrupt: raised when enabled, cleared by reading IIR */
    wr(u, 1, 0x02);
    g_assert_cmpint(s.irq_level, ==, 1);
    g_assert_cmpuint(rd(u, 2) & 0x0f, ==, 0x02);
    g_assert_cmpint(s.irq_level, ==, 0);
    sp_uart_free(u);
    g_ptr_array_free(s.lines, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/uart/lines", test_lines);
    g_test_add_func("/uart/registers", test_registers);
    g_test_add_func("/uart/input-irq", test_input_irq);
    return g_test_run();
}
