// SPDX-License-Identifier: GPL-2.0
/*
 * ssi-counter: the migration demo and memory test. Fills a buffer with a pattern and
 * keeps its checksum, then prints one line per tick with a running counter while it
 * re-checks a slice of the buffer each tick, and at the end verifies every page.
 *
 *   ssi-counter [-m MIB] [-t TICKS] [-i INTERVAL_MS] [-s PAGES] [-x EXIT_CODE] [-w] [-f FILE]
 *
 * Each tick checks PAGES pages (default: the buffer spread over the ticks). -w rewrites
 * the slice it checked (so pages become dirty wherever it runs). -f: after the last tick,
 * waits (at most 15 minutes) until FILE exists before the final check, so that a test
 * decides when the process ends instead of racing its ticks. Prints
 * "ready PID" after the fill, "tick N ..." per tick, and "final ok SUM" or
 * "final BAD ..." at the end; exits with EXIT_CODE (default 0) when every check passed,
 * 1 otherwise.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t word(uint64_t i, uint64_t gen)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ULL + gen * 0xbf58476d1ce4e5b9ULL;

	x ^= x >> 31;
	return x * 0x94d049bb133111ebULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

int main(int argc, char **argv)
{
	long mib = 100, ticks = 20, interval = 1000, code = 0, per_tick = 0, c;
	int rewrite = 0, bad = 0;
	const char *wait_for = NULL;
	uint64_t *buf, words, pages, slice, t, i, sum = 0, *gen;

	while ((c = getopt(argc, argv, "m:t:i:s:x:wf:")) != -1) {
		switch (c) {
		case 'm': mib = atol(optarg); break;
		case 't': ticks = atol(optarg); break;
		case 'i': interval = atol(optarg); break;
		case 'x': code = atol(optarg); break;
		case 's': per_tick = atol(optarg); break;
		case 'w': rewrite = 1; break;
		case 'f': wait_for = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-m MIB] [-t TICKS] [-i MS] [-s PAGES] [-x CODE] [-w] [-f FILE]\n",
				argv[0]);
			return 2;
		}
	}
	words = (uint64_t)mib << 17;
	pages = (uint64_t)mib << 8;
	buf = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* The generation each page was last written with. */
	gen = calloc(pages, sizeof(*gen));
	if (buf == MAP_FAILED || !gen) {
		perror("ssi-counter: memory");
		return 2;
	}
	for (i = 0; i < words; i++)
		buf[i] = word(i, 0);
	printf("ready %d %ld MiB\n", getpid(), mib);
	fflush(stdout);
	slice = per_tick > 0 ? (uint64_t)per_tick : pages / (ticks ? ticks : 1);
	if (!slice)
		slice = 1;
	if (slice > pages)
		slice = pages;
	for (t = 1; t <= (uint64_t)ticks; t++) {
		uint64_t first = ((t - 1) * slice) % pages, p, w, s = 0;

		if (first + slice > pages)
			first = 0;

		for (p = first; p < first + slice && p < pages; p++)
			for (w = p * 512; w < p * 512 + 512; w++) {
				if (buf[w] != word(w, gen[p]))
					bad++;
				s += buf[w];
				if (rewrite)
					buf[w] = word(w, t);
			}
		if (rewrite)
			for (p = first; p < first + slice && p < pages; p++)
				gen[p] = t;
		printf("tick %lu pages %lu-%lu sum %016llx%s\n", (unsigned long)t,
		       (unsigned long)first, (unsigned long)(first + slice - 1),
		       (unsigned long long)s, bad ? " BAD" : "");
		fflush(stdout);
		if (t < (uint64_t)ticks)
			sleep_ms(interval);
	}
	if (wait_for) {
		for (i = 0; i < 15 * 60 * 10 && access(wait_for, F_OK); i++)
			sleep_ms(100);
		printf("waited for %s: %s\n", wait_for, access(wait_for, F_OK) ? "not there" : "there");
		fflush(stdout);
	}
	for (i = 0; i < words; i++) {
		if (buf[i] != word(i, gen[i / 512]))
			bad++;
		sum += buf[i];
	}
	if (bad) {
		printf("final BAD %d mismatching words\n", bad);
		return 1;
	}
	printf("final ok %016llx\n", (unsigned long long)sum);
	return code;
}
