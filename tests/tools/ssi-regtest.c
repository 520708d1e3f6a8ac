// SPDX-License-Identifier: GPL-2.0
/*
 * ssi-regtest: holds known values in the general registers, all 16 SSE registers (and
 * the upper halves of the AVX registers when the CPU has AVX), MXCSR and the TLS base
 * across a migration point, then checks them.
 *
 *   ssi-regtest SECONDS
 *
 * It calibrates a busy loop, prints "ready PID" and spins about SECONDS seconds in one
 * asm block without a system call, so that migration freezes it on an interrupt in the
 * middle of the loop with every register live. Exit 0 when every value survived,
 * 1 with the differences otherwise.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static __thread volatile uint64_t tls_marker = 0x715e715e715e715eULL;

static uint8_t want_vec[16][32] __attribute__((aligned(32)));
static uint8_t got_vec[16][32] __attribute__((aligned(32)));
static uint64_t got_gpr[9];

static int has_avx(void)
{
	unsigned int a, b, c, d;
	uint32_t lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_AVX) || !(c & bit_OSXSAVE))
		return 0;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void spin(uint64_t n)
{
	__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n));
}

/* The GPR values: r8-r15, rbx. */
static const uint64_t want_gpr[9] = {
	0x0808080808080808ULL, 0x0909090909090909ULL, 0x1010101010101010ULL,
	0x1111111111111111ULL, 0x1212121212121212ULL, 0x1313131313131313ULL,
	0x1414141414141414ULL, 0x1515151515151515ULL, 0xbbbbbbbbbbbbbbbbULL,
};

#define LOAD_X(i) "movdqu " #i "*32(%[wv]), %%xmm" #i "\n\t"
#define STORE_X(i) "movdqu %%xmm" #i ", " #i "*32(%[gv])\n\t"
#define LOAD_Y(i) "vmovdqu " #i "*32(%[wv]), %%ymm" #i "\n\t"
#define STORE_Y(i) "vmovdqu %%ymm" #i ", " #i "*32(%[gv])\n\t"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

#define HOLD(LOAD, STORE)                                                                 \
	__asm__ volatile(ALL(LOAD)                                                         \
			 "mov 0(%[wg]), %%r8\n\tmov 8(%[wg]), %%r9\n\t"                    \
			 "mov 16(%[wg]), %%r10\n\tmov 24(%[wg]), %%r11\n\t"                \
			 "mov 32(%[wg]), %%r12\n\tmov 40(%[wg]), %%r13\n\t"                \
			 "mov 48(%[wg]), %%r14\n\tmov 56(%[wg]), %%r15\n\t"                \
			 "mov 64(%[wg]), %%rbx\n\t"                                        \
			 "1: dec %[n]\n\tjnz 1b\n\t"                                       \
			 "mov %%r8, 0(%[gg])\n\tmov %%r9, 8(%[gg])\n\t"                    \
			 "mov %%r10, 16(%[gg])\n\tmov %%r11, 24(%[gg])\n\t"                \
			 "mov %%r12, 32(%[gg])\n\tmov %%r13, 40(%[gg])\n\t"                \
			 "mov %%r14, 48(%[gg])\n\tmov %%r15, 56(%[gg])\n\t"                \
			 "mov %%rbx, 64(%[gg])\n\t" ALL(STORE)                               \
			 : [n] "+c"(n)                                                     \
			 : [wv] "D"(want_vec), [gv] "a"(got_vec), [wg] "d"(want_gpr),      \
			   [gg] "S"(got_gpr)                                               \
			 : "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rbx",    \
			   "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", \
			   "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",     \
			   "xmm14", "xmm15")

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5, t0, rate;
	int avx = has_avx(), bad = 0, i, j, width;
	uint32_t mxcsr_want = 0x7f80 | (3u << 13), mxcsr_got, mxcsr_old; /* round to zero */
	uint64_t n, calib = 20000000;

	for (i = 0; i < 16; i++)
		for (j = 0; j < 32; j++)
			want_vec[i][j] = (uint8_t)(i * 16 + j * 7 + 1);
	/* Calibrate the loop (about 1/10 s). */
	for (;;) {
		t0 = now();
		spin(calib);
		if (now() - t0 > 0.1)
			break;
		calib *= 2;
	}
	rate = calib / (now() - t0);
	n = (uint64_t)(rate * secs) | 1;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_old));
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_want));
	printf("ready %d avx=%d\n", getpid(), avx);
	fflush(stdout);
	if (avx)
		HOLD(LOAD_Y, STORE_Y);
	else
		HOLD(LOAD_X, STORE_X);
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_got));
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_old));

	width = avx ? 32 : 16;
	for (i = 0; i < 9; i++)
		if (got_gpr[i] != want_gpr[i]) {
			printf("gpr %d: %#llx != %#llx\n", i, (unsigned long long)got_gpr[i],
			       (unsigned long long)want_gpr[i]);
			bad = 1;
		}
	for (i = 0; i < 16; i++)
		if (memcmp(got_vec[i], want_vec[i], width)) {
			printf("%s%d differs (low half %s, high half %s): %02x%02x.. != %02x%02x..\n",
			       avx ? "ymm" : "xmm", i,
			       memcmp(got_vec[i], want_vec[i], 16) ? "differs" : "ok",
			       avx && memcmp(got_vec[i] + 16, want_vec[i] + 16, 16) ? "differs" : "ok",
			       got_vec[i][0], got_vec[i][1], want_vec[i][0], want_vec[i][1]);
			bad = 1;
		}
	if (mxcsr_got != mxcsr_want) {
		printf("mxcsr %#x != %#x\n", mxcsr_got, mxcsr_want);
		bad = 1;
	}
	if (tls_marker != 0x715e715e715e715eULL) {
		printf("TLS value %#llx\n", (unsigned long long)tls_marker);
		bad = 1;
	}
	printf("%s: %d general, 16 %s, mxcsr, tls\n", bad ? "FAIL" : "ok", 9,
	       avx ? "ymm (256-bit)" : "xmm");
	return bad;
}
