/* Payload entry: the VMM set rdi = SpBootInfo *, rsi = vCPU index and rsp.
 * Call sp_main(info, vcpu); if it returns, report its value as the exit
 * status through the control port. */
    .section .text.start, "ax"
    .globl _start
_start:
    xor %rbp, %rbp
    and $-16, %rsp
    call sp_main
    mov %eax, %edi
    call sp_exit
1:  jmp 1b
    .section .note.GNU-stack, "", @progbits
