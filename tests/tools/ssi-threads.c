// SPDX-License-Identifier: GPL-2.0
/*
 * ssi-threads: the test program of distributed threads (tests/cluster/threads.sh), where
 * `ssictl migrate TID NODE` moves one thread of a process to another node while its
 * siblings keep running at home, all of them in one coherent address space (x86-TSO).
 *
 *   ssi-threads counter THREADS ITERS GOFILE   THREADS (1-16) workers each add ITERS times
 *   ssi-threads mutex THREADS ITERS GOFILE     the same under a pthread_mutex
 *   ssi-threads queue ITEMS GOFILE             producer -> consumer through a queue
 *                                              under a pthread_mutex and two pthread_conds
 *   ssi-threads barrier THREADS ROUNDS GOFILE  THREADS workers, a pthread_barrier per round
 *   ssi-threads mp ITERS GOFILE                message-passing litmus, 2 workers
 *   ssi-threads sb ITERS GOFILE                store-buffering litmus (with mfence), 2 workers
 *   ssi-threads exitcode CODE GOFILE           1 worker calls exit_group(CODE)
 *   ssi-threads exitstarted CODE GOFILE        the same from a thread the worker starts
 *                                              (where it runs), while the worker spins
 *   ssi-threads join VALUE GOFILE              1 worker returns VALUE to pthread_join
 *   ssi-threads signal GOFILE                  pthread_kill(worker, SIGUSR1): the handler
 *                                              runs in the worker, wherever it is
 *   ssi-threads sleepy GOFILE                  1 worker spins until the process is killed
 *   ssi-threads fork GOFILE                    the main thread forks (refused while a
 *                                              thread is away) and posix_spawns /bin/true
 *   ssi-threads pingpong ROUNDS GOFILE         (make bench) 2 workers hand a futex word
 *                                              back and forth: wake -> wake-up latency
 *   ssi-threads lockloop ITERS GOFILE          (make bench) uncontended pthread_mutex
 *                                              lock+unlock in main, before GOFILE and after
 *   ssi-threads compute THREADS ROUNDS GOFILE [PASSES]
 *   ssi-threads arenas GOFILE
 *   ssi-threads churn GOFILE
 *                                              (make bench) each worker churns its own
 *                                              256 KiB PASSES times (default 1) a round,
 *                                              ROUNDS rounds, adding a checksum to a
 *                                              shared sum under a pthread_mutex per round
 *   ssi-threads ids GOFILE                     1 worker reports getpid(), getppid() and
 *                                              gettid(), signals the main thread
 *                                              (pthread_kill), the process (kill) and
 *                                              itself (raise)
 *   ssi-threads futex2 ROUNDS GOFILE           1 worker and the main thread use the futex2
 *                                              system calls: futex_wait/futex_wake
 *                                              ping-pong, timed waits, futex_requeue,
 *                                              futex_waitv and bad flags
 *   ssi-threads timedwait GOFILE               worker 0 sleeps in a futex wait with a
 *                                              60 s timeout from before the process is
 *                                              distributed; worker 1 (moved away) wakes it
 *   ssi-threads robust GOFILE                  1 worker takes a robust pthread_mutex and
 *                                              exits holding it while the main thread
 *                                              waits for it: EOWNERDEAD
 *   ssi-threads dlopen LIBRARY GOFILE          1 worker (moved away) loads LIBRARY
 *                                              (tests/tools/ssi-dl.c) with dlopen, the main
 *                                              thread calls into it and shares its data,
 *                                              the worker unloads it and ends with
 *                                              pthread_exit (which loads libgcc_s)
 *   ssi-threads wander THREADS GOFILE          workers add under a pthread_mutex until
 *                                              GOFILE.stop exists, noting the nodes they
 *                                              run on (threads move on and back meanwhile)
 *
 * Every mode creates its workers, prints "ready PID" and one line "tid I TID" per worker
 * (worker I's gettid(), the id to migrate) and waits until the file GOFILE exists, so
 * that the test can move threads before they start. The main thread polls for GOFILE and
 * then raises a flag the workers spin on. counter and mutex workers stop half-way until
 * GOFILE.half exists as well (so that threads can be moved while they run for sure).
 * "workers done" is printed once every worker
 * has finished its loop (before pthread_join: a hang after it is in the thread exit or
 * the join, not in the memory).
 *
 * Why the workers look as they do: counter, mp and sb test the memory alone, so their
 * workers synchronise only through C11 atomics and spin-waits (pause, and sched_yield
 * every ~1000 spins so that a spinning sibling does not starve the others on the
 * guests' single vCPU); mutex, queue and barrier test cluster-wide futexes through
 * glibc's own pthread_mutex, pthread_cond and pthread_barrier. No worker uses stdio or
 * malloc. All the memory they use is static
 * and allocated before pthread_create, and each variable that the test moves between
 * nodes is alone on its own 4096-byte page, so that every page has one job. Only the
 * main thread, which stays at home, prints, sleeps and joins.
 *
 * Results: counter prints "counter total=X expected=Y locked=L expected_locked=M" (L is
 * a plain counter incremented under a spinlock every 16th iteration) and "per-thread ok"
 * or "per-thread mismatch ..."; mp prints "mp iterations=N forbidden=K" (the reader saw
 * the flag of round i but not the data of round i); sb prints "sb iterations=N
 * forbidden=K outcomes 00=a 01=b 10=c 11=d" (r0 r1; 00 is forbidden with the fences);
 * mutex prints "mutex total=X expected=Y"; queue prints "queue items=N in_order=M";
 * barrier prints "barrier rounds=R ok=K";
 * join prints "joined value=V"; signal prints "signal handled_by=worker" (or "other");
 * fork prints "fork errno=E" (0 if it forked) and "spawn status=S"; pingpong prints
 * "pingpong rounds=N median_ns=M" (a round is two wake -> wake-up hops); lockloop prints
 * "lockloop before_ns=B after_ns=A" (per lock+unlock, median of 9 runs each); wander
 * prints "wander total=X sum=Y" (the mutexed counter and the workers' own counts),
 * "path I: HOST..." (the host names worker I ran on, in order) and "tid I start=A end=B"
 * (its gettid() then and at the end), and fails if a worker looked ended to
 * pthread_tryjoin_np while it ran (its task on a node it left cleared its thread id);
 * compute prints "compute sum=S elapsed_ns=E lock_ns=L" once the workers are done (E
 * from GOFILE to the last one's end, L the mean time a worker spent taking the mutex),
 * then waits for GOFILE.end before it joins them (so that the memory's counters can be
 * read meanwhile);
 * ids prints "ids pid=P ppid=Q tid=T" (the worker's view, 1 more field "same" or
 * "differ" against the main thread's) and "signals pthread_kill=A kill=B raise=C"
 * (each "ok" when its handler ran in the thread it should: main, any thread but the
 * worker's stand-in (main here), the worker);
 * newmem: the worker maps memory (mmap, a big and a small malloc), the main thread
 * reads it, writes to it and maps some of its own, which the worker reads; the worker
 * starts a thread, whose stack the main thread reads, tries sbrk() and mremap(), then
 * unmaps its mapping, which the main thread checks is gone; it prints "newmem
 * worker_map=ok worker_big=ok worker_small=ok written=ok home_map=ok stack=ok
 * unmapped=ok sbrk=E mremap=E" ("bad" for a check that failed; E the error, or
 * "moved");
 * exec: the worker calls execve() of /bin/true; it prints "exec errno=E" (16, EBUSY,
 * where the worker runs on another node than its process's home);
 * arenas: 2 workers each make their malloc arena before GOFILE (a malloc; glibc reserves
 * the arena PROT_NONE and opens it with mprotect as it grows); after GOFILE (worker 0
 * was moved meanwhile) each grows it by ARENA_BLOCKS blocks, and every block is read
 * by a thread on the other node; it prints "arenas remote=ok home=ok seen_away=ok
 * written=ok same_arena=yes" (remote/home: the main thread at home read worker 0's and
 * worker 1's blocks; seen_away: worker 0 read worker 1's; written: worker 0 read a store
 * of the main thread into its block; same_arena: each worker's last block is in the
 * arena it made before GOFILE);
 * churn: worker 1 reserves CHURN_PAGES pages PROT_NONE before GOFILE; after it, it opens
 * them one by one with mprotect (writing a value into each) and maps a page of its own
 * every 4th one, as fast as a round trip allows, while worker 0 is moved (its
 * destination builds its address space meanwhile); after GOFILE.half worker 0 reads
 * every page opened and mapped so far; it prints "churn opened=N maps=K pages=ok
 * maps=ok";
 * dlopen prints "dlopen loaded=ok data=ok rodata=ok home_call=ok home_seen=ok
 * away_seen=ok unmapped=ok exit=V" ("bad" for a check that failed, or "dlopen failed:
 * TEXT"; V the value pthread_join got from the worker's pthread_exit(), 77);
 * mappings maps N private writable pages, each a mapping of its own, before the worker
 * starts; the worker sums them, then doubles each; it prints "mappings n=N sum=S
 * written=W" (S must be N(N+1)/2, W the pages that hold what the worker wrote).
 * Exit 0 when everything checks out, 1 otherwise, CODE for
 * exitcode (1 with a message if exit_group ended only the worker), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_THREADS 16
/* Spins between two looks at the go flag, and between two sched_yield()s elsewhere. */
#define SPINS 1000
/* The join worker's writes after GOFILE. */
#define JOIN_SPINS 1000000UL

/* One variable alone on its page: aligned to a page and padded to its size. */
struct page_ulong {
	_Alignas(PAGE) atomic_ulong v;
};

struct page_plain {
	_Alignas(PAGE) unsigned long v;
};

/* What one worker keeps for itself (only the worker writes it while it runs). */
struct worker {
	_Alignas(PAGE) atomic_ulong count; /* counter: its iterations; join: its writes */
	unsigned long iterations, forbidden;   /* mp reader, sb thread 0 */
	unsigned long outcomes[4];             /* sb thread 0: r0 * 2 + r1 */
	char path[8][32];                      /* wander: the hosts it ran on */
	unsigned int npath;
	pid_t tid_end;
	unsigned long lock_ns; /* compute: time spent taking the mutex */
	unsigned long start_ns, end_ns; /* compute: when it started and ended */
	unsigned long hold_ns, work_ns;  /* compute: holding the mutex, computing */
	struct rusage usage;             /* compute: the worker's own, at its end */
};

/* The sense-reversing barrier of sb (2 threads). */
struct barrier {
	_Alignas(PAGE) atomic_uint count;
	atomic_uint sense;
};

static struct page_ulong go_flag, ready_count, done_count;
static struct {
	_Alignas(PAGE) pid_t tid[MAX_THREADS];
} tids;
static struct worker workers[MAX_THREADS];
/* counter */
static struct page_ulong shared_counter, spinlock;
static struct page_plain locked_counter;
/* mp */
static struct page_ulong mp_data, mp_flag, mp_ack;
/* sb */
static struct page_ulong sb_x, sb_y;
static struct barrier sb_barrier;
/* Whether sb thread T saw the other's store, for each round of the current chunk of
 * SB_CHUNK rounds: a page per thread, written only by it, read by thread 0 at the chunk's
 * end. (The rounds store their number, so x and y need no reset between rounds.) */
#define SB_CHUNK PAGE
static struct {
	_Alignas(PAGE) unsigned char saw[SB_CHUNK];
} sb_seen[2];

/* the half-way gate of counter and mutex; wander's stop */
static struct page_ulong half_flag, stop_flag;
/* mutex */
static struct {
	_Alignas(PAGE) pthread_mutex_t lock;
	unsigned long counter;
} mutexed = { PTHREAD_MUTEX_INITIALIZER, 0 };
/* queue: a ring of QUEUE_LEN numbered items */
#define QUEUE_LEN 16
static struct {
	_Alignas(PAGE) pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	unsigned long items[QUEUE_LEN];
	unsigned long head, tail;
} queue = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    { 0 }, 0, 0 };
/* barrier: each worker's round, checked by all after each barrier */
static struct {
	_Alignas(PAGE) pthread_barrier_t b;
	atomic_ulong round[MAX_THREADS];
} rounds;

/* signal: who ran the SIGUSR1 handler (1 the worker, 2 another thread) */
static struct page_ulong handled;
static pthread_t signal_target;

/* pingpong: the word the two workers hand back and forth, and worker 0's round times */
static struct page_ulong pp_word;
static unsigned long *pp_ns;

static enum {
	COUNTER,
	MUTEX,
	QUEUE,
	BARRIER,
	MP,
	SB,
	EXITCODE,
	JOIN,
	SIGNAL,
	SLEEPY,
	FORK,
	PINGPONG,
	LOCKLOOP,
	WANDER,
	IDS,
	COMPUTE,
	MAPPINGS,
	NEWMEM,
	EXEC,
	ARENAS,
	CHURN,
	FUTEX2,
	TIMEDWAIT,
	ROBUST,
	DLOPEN
} mode;
static unsigned long iters;
/* compute: passes over a worker's memory per round. */
static unsigned long passes = 1;
static long value;
static int nthreads;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Keeps the compiler from moving memory accesses across it; emits nothing. */
static inline void compiler_barrier(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

/* Spins until COND holds, yielding the CPU every SPINS spins. */
#define SPIN_UNTIL(cond)                                           \
	do {                                                       \
		unsigned int spins_ = 0;                           \
		while (!(cond)) {                                  \
			cpu_relax();                               \
			if (++spins_ % SPINS == 0)                 \
				sched_yield();                     \
		}                                                  \
	} while (0)

static void wait_go(void)
{
	int k;

	while (!atomic_load_explicit(&go_flag.v, memory_order_acquire)) {
		for (k = 0; k < SPINS; k++)
			cpu_relax();
		sched_yield();
	}
}

/* Test-and-test-and-set. */
static void lock(void)
{
	while (atomic_exchange_explicit(&spinlock.v, 1, memory_order_acquire))
		SPIN_UNTIL(!atomic_load_explicit(&spinlock.v, memory_order_relaxed));
}

static void unlock(void)
{
	atomic_store_explicit(&spinlock.v, 0, memory_order_release);
}

static void barrier_wait(unsigned int *sense)
{
	unsigned int s = *sense ^ 1;

	*sense = s;
	if (atomic_fetch_add(&sb_barrier.count, 1) == 1) {
		atomic_store(&sb_barrier.count, 0);
		atomic_store(&sb_barrier.sense, s);
	} else {
		SPIN_UNTIL(atomic_load(&sb_barrier.sense) == s);
	}
}

/* counter and mutex: half-way, wait until the main thread raises the half flag. */
static void half_way(unsigned long i)
{
	if (i == iters / 2)
		SPIN_UNTIL(atomic_load_explicit(&half_flag.v, memory_order_acquire));
}

static void run_counter(struct worker *w)
{
	unsigned long i;

	for (i = 0; i < iters; i++) {
		half_way(i);
		atomic_fetch_add(&shared_counter.v, 1);
		/* A plain load and store (no lock prefix), but each one reaches memory. */
		atomic_store_explicit(&w->count,
				      atomic_load_explicit(&w->count, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		if ((i & 15) == 0) {
			lock();
			locked_counter.v = locked_counter.v + 1;
			unlock();
		}
	}
}

static void run_mutex(struct worker *w)
{
	unsigned long i;

	for (i = 0; i < iters; i++) {
		half_way(i);
		pthread_mutex_lock(&mutexed.lock);
		mutexed.counter++;
		pthread_mutex_unlock(&mutexed.lock);
		atomic_store_explicit(&w->count, i + 1, memory_order_relaxed);
	}
}

/* Worker 0 produces 1..iters; worker 1 consumes them and counts those in order. */
static void run_queue(int me, struct worker *w)
{
	unsigned long i, item;

	for (i = 1; i <= iters; i++) {
		pthread_mutex_lock(&queue.lock);
		if (me == 0) {
			while (queue.tail - queue.head == QUEUE_LEN)
				pthread_cond_wait(&queue.not_full, &queue.lock);
			queue.items[queue.tail++ % QUEUE_LEN] = i;
			pthread_cond_signal(&queue.not_empty);
		} else {
			while (queue.tail == queue.head)
				pthread_cond_wait(&queue.not_empty, &queue.lock);
			item = queue.items[queue.head++ % QUEUE_LEN];
			pthread_cond_signal(&queue.not_full);
			w->iterations++;
			if (item != i)
				w->forbidden++;
		}
		pthread_mutex_unlock(&queue.lock);
	}
}

/* Each round: publish the round, wait for all, check that all published it. */
static void run_barrier(int me, struct worker *w)
{
	unsigned long r;
	int k;

	for (r = 1; r <= iters; r++) {
		atomic_store(&rounds.round[me], r);
		pthread_barrier_wait(&rounds.b);
		for (k = 0; k < nthreads; k++)
			if (atomic_load(&rounds.round[k]) < r)
				w->forbidden++;
		w->iterations++;
		/* Nobody publishes round r + 1 before everybody checked round r. */
		pthread_barrier_wait(&rounds.b);
	}
}

static void run_mp_writer(void)
{
	unsigned long i;

	for (i = 1; i <= iters; i++) {
		atomic_store_explicit(&mp_data.v, i, memory_order_relaxed);
		compiler_barrier();
		atomic_store_explicit(&mp_flag.v, i, memory_order_relaxed);
		SPIN_UNTIL(atomic_load_explicit(&mp_ack.v, memory_order_relaxed) == i);
	}
}

static void run_mp_reader(struct worker *w)
{
	unsigned long i, d;

	for (i = 1; i <= iters; i++) {
		SPIN_UNTIL(atomic_load_explicit(&mp_flag.v, memory_order_relaxed) == i);
		compiler_barrier();
		d = atomic_load_explicit(&mp_data.v, memory_order_relaxed);
		/* d < i is the forbidden outcome; d > i cannot happen at all (the writer
		 * waits for our ack before it stores i + 1): either means broken memory. */
		if (d != i)
			w->forbidden++;
		w->iterations++;
		compiler_barrier();
		atomic_store_explicit(&mp_ack.v, i, memory_order_relaxed);
	}
}

/*
 * Round i: both threads meet, store i to their own word, fence, and load the other's
 * word; r = 1 if it holds i (the other's store of this round was seen). Both words hold
 * i - 1 before the round, so r0 = r1 = 0 is the outcome x86-TSO forbids with the fence.
 * One meeting per round; thread 0 tallies both threads' results at each chunk's end.
 */
static void run_sb(int me, struct worker *w)
{
	atomic_ulong *mine = me ? &sb_y.v : &sb_x.v, *other = me ? &sb_x.v : &sb_y.v;
	unsigned int sense = 0;
	unsigned long i, k, n;
	int r0, r1;

	for (i = 1; i <= iters; i++) {
		barrier_wait(&sense);
		atomic_store_explicit(mine, i, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		sb_seen[me].saw[(i - 1) % SB_CHUNK] =
			atomic_load_explicit(other, memory_order_relaxed) >= i;
		if (i % SB_CHUNK && i < iters)
			continue;
		barrier_wait(&sense);
		if (!me) {
			n = (i - 1) % SB_CHUNK + 1;
			for (k = 0; k < n; k++) {
				r0 = sb_seen[0].saw[k];
				r1 = sb_seen[1].saw[k];
				w->outcomes[r0 * 2 + r1]++;
				if (!r0 && !r1)
					w->forbidden++;
				w->iterations++;
			}
		}
		/* Nobody writes the next chunk's results before thread 0 read these. */
		barrier_wait(&sense);
	}
}

static unsigned long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000000000UL + (unsigned long)ts.tv_nsec;
}

static void futex_wait_for(atomic_ulong *word, unsigned long want)
{
	unsigned long v;

	while ((v = atomic_load(word)) != want)
		syscall(SYS_futex, (unsigned int *)word, FUTEX_WAIT_PRIVATE, (unsigned int)v, NULL,
			NULL, 0);
}

/* Worker 0 stores 2k+1 and wakes worker 1, which answers 2k+2; worker 0 times each round. */
static void run_pingpong(int me)
{
	unsigned long i, t0;

	for (i = 0; i < iters; i++) {
		if (me == 0) {
			t0 = now_ns();
			atomic_store(&pp_word.v, 2 * i + 1);
			syscall(SYS_futex, (unsigned int *)&pp_word.v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
				0);
			futex_wait_for(&pp_word.v, 2 * i + 2);
			pp_ns[i] = now_ns() - t0;
		} else {
			futex_wait_for(&pp_word.v, 2 * i + 1);
			atomic_store(&pp_word.v, 2 * i + 2);
			syscall(SYS_futex, (unsigned int *)&pp_word.v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
				0);
		}
	}
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

static unsigned long median(unsigned long *v, unsigned long n)
{
	qsort(v, n, sizeof(*v), cmp_ulong);
	return v[n / 2];
}

/* lockloop: ns per uncontended lock+unlock, median of 9 runs of iters each. */
static unsigned long lock_ns(void)
{
	unsigned long runs[9], t0, i;
	int r;

	for (r = 0; r < 9; r++) {
		t0 = now_ns();
		for (i = 0; i < iters; i++) {
			pthread_mutex_lock(&mutexed.lock);
			mutexed.counter++;
			pthread_mutex_unlock(&mutexed.lock);
		}
		runs[r] = (now_ns() - t0) / iters;
	}
	return median(runs, 9);
}

/* wander: the host the worker runs on now, if it differs from the last one noted. */
static void note_host(struct worker *w)
{
	struct utsname u;
	size_t n;

	if (uname(&u) || w->npath == 8)
		return;
	if (w->npath && !strncmp(w->path[w->npath - 1], u.nodename, sizeof(w->path[0]) - 1))
		return;
	n = strnlen(u.nodename, sizeof(w->path[0]) - 1);
	memcpy(w->path[w->npath], u.nodename, n);
	w->path[w->npath][n] = 0;
	w->npath++;
}

static void run_wander(struct worker *w)
{
	unsigned long i = 0;

	note_host(w);
	while (!atomic_load_explicit(&stop_flag.v, memory_order_acquire)) {
		pthread_mutex_lock(&mutexed.lock);
		mutexed.counter++;
		pthread_mutex_unlock(&mutexed.lock);
		atomic_store_explicit(&w->count, ++i, memory_order_relaxed);
		if ((i & 255) == 0)
			note_host(w);
	}
	note_host(w);
	w->tid_end = (pid_t)syscall(SYS_gettid);
}

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_store(&handled.v, pthread_equal(pthread_self(), signal_target) ? 1 : 2);
}

/* compute: each worker's own memory, and the sum they share. */
#define COMPUTE_WORDS (256 * 1024 / sizeof(uint32_t))
static struct {
	_Alignas(PAGE) uint32_t words[COMPUTE_WORDS];
} compute_mem[MAX_THREADS];

static void run_compute(int me)
{
	uint32_t *m = compute_mem[me].words, x = 2463534242u + (uint32_t)me;
	unsigned long round, sum, t0, t1, lock_ns = 0, hold_ns = 0, work_ns = 0, start = now_ns();
	size_t j;

	for (round = 0; round < iters; round++) {
		sum = 0;
		t1 = now_ns();
		for (j = 0; j < COMPUTE_WORDS * passes; j++) {
			/* xorshift32: a few cycles of work per word, deterministic per worker. */
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			m[j % COMPUTE_WORDS] += x;
			sum += m[j % COMPUTE_WORDS];
		}
		t0 = now_ns();
		work_ns += t0 - t1;
		pthread_mutex_lock(&mutexed.lock);
		t1 = now_ns();
		lock_ns += t1 - t0;
		mutexed.counter += sum;
		pthread_mutex_unlock(&mutexed.lock);
		hold_ns += now_ns() - t1;
	}
	workers[me].hold_ns = hold_ns;
	workers[me].work_ns = work_ns;
	getrusage(RUSAGE_THREAD, &workers[me].usage);
	workers[me].lock_ns = lock_ns;
	workers[me].start_ns = start;
	workers[me].end_ns = now_ns();
}

/* ids: the worker's view of its ids, and where each of its signals was handled. */
static struct {
	_Alignas(PAGE) long pid, ppid, tid;
	atomic_int by_pthread_kill, by_kill, by_raise; /* 1 main, 2 worker */
	int err_pthread_kill, err_kill, err_raise;
} ids;
static pthread_t main_thread;

static int handler_thread(void)
{
	return pthread_equal(pthread_self(), main_thread) ? 1 : 2;
}

static void on_ids_usr1(int sig)
{
	(void)sig;
	atomic_store(&ids.by_pthread_kill, handler_thread());
}

static void on_ids_usr2(int sig)
{
	(void)sig;
	atomic_store(&ids.by_kill, handler_thread());
}

static void on_ids_urg(int sig)
{
	(void)sig;
	atomic_store(&ids.by_raise, handler_thread());
}

static void run_ids(void)
{
	ids.pid = getpid();
	ids.ppid = getppid();
	ids.tid = syscall(SYS_gettid);
	ids.err_pthread_kill = pthread_kill(main_thread, SIGUSR1);
	if (!ids.err_pthread_kill)
		SPIN_UNTIL(atomic_load(&ids.by_pthread_kill));
	ids.err_kill = kill(getpid(), SIGUSR2) ? errno : 0;
	if (!ids.err_kill)
		SPIN_UNTIL(atomic_load(&ids.by_kill));
	ids.err_raise = raise(SIGURG) ? errno : 0;
	if (!ids.err_raise)
		SPIN_UNTIL(atomic_load(&ids.by_raise));
}

/* mappings: N private writable pages, each its own mapping (PROT_NONE pages between). */
static unsigned char *areas;
static unsigned long areas_sum;

static unsigned long *area(unsigned long k)
{
	return (unsigned long *)(areas + 2 * k * PAGE);
}

static int map_areas(unsigned long n)
{
	unsigned long k;

	areas = mmap(NULL, 2 * n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (areas == MAP_FAILED)
		return -1;
	for (k = 0; k < n; k++) {
		/* The page after each is unmapped: mappings that touch would share a region. */
		if (mprotect(area(k), PAGE, PROT_READ | PROT_WRITE) ||
		    munmap((char *)area(k) + PAGE, PAGE))
			return -1;
		*area(k) = k + 1;
	}
	return 0;
}

/*
 * newmem: memory mapped after the process became distributed, by the worker (moved to
 * another node) and by the main thread at home, passed to the other by pointer.
 */
#define NEWMEM_WORDS (16384 / sizeof(unsigned long))
#define NEWMEM_BIG (1UL << 20)
#define NEWMEM_SMALL 4000UL
static struct {
	_Alignas(PAGE) atomic_int stage;
	_Atomic(unsigned long *) worker_map, worker_big, worker_small, home_map, stack;
	int home_map_ok, written_ok, sbrk_errno, mremap_errno;
} nm;

static int newmem_filled(const unsigned long *p, unsigned long words, unsigned long mul,
			 unsigned long add)
{
	unsigned long i;

	for (i = 0; i < words; i++)
		if (p[i] != i * mul + add)
			return 0;
	return 1;
}

static void newmem_fill(unsigned long *p, unsigned long words, unsigned long mul,
			unsigned long add)
{
	unsigned long i;

	for (i = 0; i < words; i++)
		p[i] = i * mul + add;
}

/* A thread the worker starts where it runs: its stack is new memory too. */
static void *newmem_stack_thread(void *arg)
{
	unsigned long a[512];

	(void)arg;
	newmem_fill(a, 512, 1, 5);
	atomic_store(&nm.stack, a);
	SPIN_UNTIL(atomic_load(&nm.stage) >= 4);
	return NULL;
}

static void run_newmem(void)
{
	unsigned long *p, *big, *small;
	pthread_t t;
	void *r;

	p = mmap(NULL, NEWMEM_WORDS * sizeof(long), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	big = malloc(NEWMEM_BIG);
	small = malloc(NEWMEM_SMALL);
	if (p == MAP_FAILED || !big || !small) {
		printf("newmem: the worker's mmap or malloc failed: %s\n", strerror(errno));
		fflush(stdout);
		_exit(1);
	}
	newmem_fill(p, NEWMEM_WORDS, 7, 0);
	newmem_fill(big, NEWMEM_BIG / sizeof(long), 3, 1);
	newmem_fill(small, NEWMEM_SMALL / sizeof(long), 5, 2);
	atomic_store(&nm.worker_map, p);
	atomic_store(&nm.worker_big, big);
	atomic_store(&nm.worker_small, small);
	atomic_store(&nm.stage, 1);

	SPIN_UNTIL(atomic_load(&nm.stage) == 2);
	nm.home_map_ok = newmem_filled(atomic_load(&nm.home_map), NEWMEM_WORDS, 11, 4);
	nm.written_ok = p[0] == 12345;
	nm.sbrk_errno = sbrk(PAGE) == (void *)-1 ? errno : 0;
	r = mremap(p, NEWMEM_WORDS * sizeof(long), 2 * NEWMEM_WORDS * sizeof(long),
		   MREMAP_MAYMOVE);
	nm.mremap_errno = r == MAP_FAILED ? errno : 0;
	if (r != MAP_FAILED)
		p = r;
	if (pthread_create(&t, NULL, newmem_stack_thread, NULL)) {
		printf("newmem: pthread_create on the worker's node failed\n");
		fflush(stdout);
		_exit(1);
	}
	atomic_store(&nm.stage, 3);

	SPIN_UNTIL(atomic_load(&nm.stage) == 4);
	pthread_join(t, NULL);
	munmap(p, NEWMEM_WORDS * sizeof(long));
	free(big);
	free(small);
	atomic_store(&nm.stage, 5);
	SPIN_UNTIL(atomic_load(&nm.stage) == 6);
}

/*
 * arenas: malloc arenas made before the process became distributed, grown after it.
 */
#define ARENA_BLOCKS 400
#define ARENA_BLOCK_WORDS (4000 / sizeof(unsigned long))
/* glibc's arenas are reservations of this size, aligned to it (64-bit). */
#define ARENA_SIZE (64UL << 20)
static struct {
	_Alignas(PAGE) atomic_int filled, checked, done;
	void *first[2];
	unsigned long *block[2][ARENA_BLOCKS];
	int seen_ok, written_ok;
} ar;

static unsigned long arena_word(int w, int i, unsigned long j)
{
	return (unsigned long)i * 1000003UL + j * 7 + (unsigned long)w;
}

static int arena_check(int w)
{
	unsigned long j;
	int i;

	for (i = 0; i < ARENA_BLOCKS; i++)
		for (j = 0; j < ARENA_BLOCK_WORDS; j++)
			if (ar.block[w][i][j] != arena_word(w, i, j))
				return 0;
	return 1;
}

static void run_arenas(int me)
{
	unsigned long j;
	int i;

	for (i = 0; i < ARENA_BLOCKS; i++) {
		unsigned long *p = malloc(ARENA_BLOCK_WORDS * sizeof(long));

		if (!p) {
			printf("arenas: malloc failed\n");
			fflush(stdout);
			_exit(1);
		}
		for (j = 0; j < ARENA_BLOCK_WORDS; j++)
			p[j] = arena_word(me, i, j);
		ar.block[me][i] = p;
	}
	atomic_fetch_add(&ar.filled, 1);
	SPIN_UNTIL(atomic_load(&ar.filled) == 2);
	if (me == 0)
		ar.seen_ok = arena_check(1);
	SPIN_UNTIL(atomic_load(&ar.checked));
	if (me == 0)
		ar.written_ok = ar.block[0][ARENA_BLOCKS - 1][0] == 4242;
	atomic_fetch_add(&ar.done, 1);
}

/*
 * churn: the address space changes (memory opened and mapped) while a thread moves.
 */
#define CHURN_PAGES 4096
#define CHURN_MAPS 256
static struct {
	_Alignas(PAGE) atomic_ulong opened, nmaps;
	atomic_int stop;
	char *reserved;
	unsigned long *maps[CHURN_MAPS];
	unsigned long checked_pages, checked_maps;
	int pages_ok, maps_ok, err;
} ch;

static unsigned long churn_word(unsigned long i)
{
	return i * 2654435761UL + 11;
}

static void run_churn(int me)
{
	unsigned long i, k;

	if (me == 0) {
		SPIN_UNTIL(atomic_load_explicit(&half_flag.v, memory_order_acquire));
		i = atomic_load_explicit(&ch.opened, memory_order_acquire);
		k = atomic_load_explicit(&ch.nmaps, memory_order_acquire);
		ch.pages_ok = ch.maps_ok = 1;
		for (unsigned long j = 0; j < i; j++)
			if (*(unsigned long *)(ch.reserved + j * PAGE) != churn_word(j))
				ch.pages_ok = 0;
		for (unsigned long j = 0; j < k; j++)
			if (ch.maps[j][0] != j * 17 + 3)
				ch.maps_ok = 0;
		ch.checked_pages = i;
		ch.checked_maps = k;
		atomic_store(&ch.stop, 1);
		return;
	}
	for (i = 0, k = 0; i < CHURN_PAGES && !atomic_load(&ch.stop); i++) {
		char *p = ch.reserved + i * PAGE;

		if (mprotect(p, PAGE, PROT_READ | PROT_WRITE)) {
			ch.err = errno;
			break;
		}
		*(unsigned long *)p = churn_word(i);
		if (i % 4 == 0 && k < CHURN_MAPS) {
			unsigned long *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
						MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (m == MAP_FAILED) {
				ch.err = errno;
				break;
			}
			m[0] = k * 17 + 3;
			ch.maps[k++] = m;
			atomic_store_explicit(&ch.nmaps, k, memory_order_release);
		}
		atomic_store_explicit(&ch.opened, i + 1, memory_order_release);
		/* Not faster than a round trip would be, so that the move meets changes. */
		usleep(2000);
	}
	SPIN_UNTIL(atomic_load(&ch.stop));
}

/* The main thread's side of arenas; prints the results. */
static int arenas_home(void)
{
	int remote_ok, home_ok, same = 1, w;

	SPIN_UNTIL(atomic_load(&ar.filled) == 2);
	remote_ok = arena_check(0);
	home_ok = arena_check(1);
	ar.block[0][ARENA_BLOCKS - 1][0] = 4242;
	atomic_store(&ar.checked, 1);
	SPIN_UNTIL(atomic_load(&ar.done) == 2);
	for (w = 0; w < 2; w++)
		same &= ((uintptr_t)ar.first[w] & ~(ARENA_SIZE - 1)) ==
			((uintptr_t)ar.block[w][ARENA_BLOCKS - 1] & ~(ARENA_SIZE - 1));
	printf("arenas remote=%s home=%s seen_away=%s written=%s same_arena=%s\n",
	       remote_ok ? "ok" : "bad", home_ok ? "ok" : "bad", ar.seen_ok ? "ok" : "bad",
	       ar.written_ok ? "ok" : "bad", same ? "yes" : "no");
	return !(remote_ok && home_ok && ar.seen_ok && ar.written_ok);
}

/* The main thread's side of newmem; prints the results. */
static int newmem_home(void)
{
	unsigned long *m, *p;
	int big_ok, small_ok, map_ok, stack_ok, unmapped;

	SPIN_UNTIL(atomic_load(&nm.stage) == 1);
	p = atomic_load(&nm.worker_map);
	map_ok = newmem_filled(p, NEWMEM_WORDS, 7, 0);
	big_ok = newmem_filled(atomic_load(&nm.worker_big), NEWMEM_BIG / sizeof(long), 3, 1);
	small_ok = newmem_filled(atomic_load(&nm.worker_small), NEWMEM_SMALL / sizeof(long), 5,
				 2);
	p[0] = 12345;
	m = mmap(NULL, NEWMEM_WORDS * sizeof(long), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		printf("newmem: mmap at home failed: %s\n", strerror(errno));
		return 1;
	}
	newmem_fill(m, NEWMEM_WORDS, 11, 4);
	atomic_store(&nm.home_map, m);
	atomic_store(&nm.stage, 2);

	SPIN_UNTIL(atomic_load(&nm.stage) == 3 && atomic_load(&nm.stack));
	stack_ok = newmem_filled(atomic_load(&nm.stack), 512, 1, 5);
	atomic_store(&nm.stage, 4);

	SPIN_UNTIL(atomic_load(&nm.stage) == 5);
	/* Unmapped by the worker: gone here too (madvise() of unmapped memory: ENOMEM). */
	unmapped = madvise(p, PAGE, MADV_NORMAL) && errno == ENOMEM;
	atomic_store(&nm.stage, 6);
	printf("newmem worker_map=%s worker_big=%s worker_small=%s written=%s home_map=%s "
	       "stack=%s unmapped=%s sbrk=%s mremap=%s\n",
	       map_ok ? "ok" : "bad", big_ok ? "ok" : "bad", small_ok ? "ok" : "bad",
	       nm.written_ok ? "ok" : "bad", nm.home_map_ok ? "ok" : "bad",
	       stack_ok ? "ok" : "bad", unmapped ? "ok" : "bad",
	       nm.sbrk_errno ? strerror(nm.sbrk_errno) : "moved",
	       nm.mremap_errno ? strerror(nm.mremap_errno) : "moved");
	return !(map_ok && big_ok && small_ok && nm.written_ok && nm.home_map_ok && stack_ok &&
		 unmapped);
}

/* The worker reads every area, then doubles what it read there. */
static void run_mappings(void)
{
	unsigned long k;

	for (k = 0; k < iters; k++)
		areas_sum += *area(k);
	for (k = 0; k < iters; k++)
		*area(k) *= 2;
}

/*
 * dlopen: a library loaded by a thread away from home. Its text, read-only data, data
 * and bss must be at the same addresses in every address space of the process, with
 * the same contents: the main thread at home calls into it and shares its variables.
 */
#define DL_EXIT_VALUE 77
static const char *dl_library;
static struct {
	_Alignas(PAGE) atomic_int stage;
	int (*add)(int);
	const char *(*name)(void);
	int *data, *bss;
	int loaded_ok, data_ok, rodata_ok, away_seen_ok;
	char error[200];
} dl;

static void run_dlopen(void)
{
	void *h = dlopen(dl_library, RTLD_NOW);

	if (h) {
		dl.add = (int (*)(int))dlsym(h, "ssi_dl_add");
		dl.name = (const char *(*)(void))dlsym(h, "ssi_dl_name");
		dl.data = dlsym(h, "ssi_dl_data");
		dl.bss = dlsym(h, "ssi_dl_bss");
	}
	if (!h || !dl.add || !dl.name || !dl.data || !dl.bss) {
		snprintf(dl.error, sizeof(dl.error), "%s", dlerror());
		atomic_store(&dl.stage, -1);
		return;
	}
	dl.loaded_ok = 1;
	/* .data as the file has it, .bss zero, .rodata readable through the text. */
	dl.data_ok = *dl.data == 1234 && *dl.bss == 0;
	dl.rodata_ok = !strcmp(dl.name(), "ssi-dl rodata");
	dl.add(1);
	atomic_store(&dl.stage, 1);

	/* The main thread called it at home (data 1245, bss 2) and stored 5000. */
	SPIN_UNTIL(atomic_load(&dl.stage) == 2);
	dl.away_seen_ok = *dl.data == 5000 && *dl.bss == 2;
	dlclose(h);
	atomic_store(&dl.stage, 3);
	SPIN_UNTIL(atomic_load(&dl.stage) == 4);
	/* The first pthread_exit() of the process loads libgcc_s (for unwinding). */
	atomic_fetch_add_explicit(&done_count.v, 1, memory_order_release);
	pthread_exit((void *)(intptr_t)DL_EXIT_VALUE);
}

/* The main thread's side of dlopen; its results are printed after the join. */
static int dl_home_call_ok, dl_home_seen_ok, dl_unmapped_ok;

static void dlopen_home(void)
{
	uintptr_t text;

	SPIN_UNTIL(atomic_load(&dl.stage) != 0);
	if (atomic_load(&dl.stage) < 0)
		return;
	dl_home_seen_ok = *dl.data == 1235 && *dl.bss == 1;
	dl_home_call_ok = !strcmp(dl.name(), "ssi-dl rodata") && dl.add(10) == 1245;
	*dl.data = 5000;
	text = (uintptr_t)dl.add & ~(uintptr_t)(PAGE - 1);
	atomic_store(&dl.stage, 2);
	SPIN_UNTIL(atomic_load(&dl.stage) == 3);
	/* Unloaded by the worker: its text is gone here too (madvise(): ENOMEM). */
	dl_unmapped_ok = madvise((void *)text, PAGE, MADV_NORMAL) && errno == ENOMEM;
	atomic_store(&dl.stage, 4);
}

/* exec: the worker's execve() of /bin/true where it runs (errno, or 0 if it returned). */
static int exec_errno = -1;

static void run_exec(void)
{
	char *const args[] = { "/bin/true", NULL };

	execve(args[0], args, environ);
	exec_errno = errno;
}

/*
 * futex2: the futex2 system calls (Linux 6.7+; glibc has no wrappers) on 32-bit private
 * words. The worker (moved away) and the main thread (at home) hand a word back and
 * forth ROUNDS times with futex_wait/futex_wake, each wait bounded by 2 s so that a lost
 * wake is counted instead of hanging; the worker then times out on both clocks, sleeps
 * on a word the main thread requeues (futex_requeue) to another and wakes there, and
 * tries futex_waitv (refused with ENOSYS in a distributed process) and bad flags.
 */
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#define SYS_futex_wait 455
#define SYS_futex_requeue 456
#endif
#define F2_U32_PRIVATE (0x02 | 128) /* FUTEX2_SIZE_U32 | FUTEX2_PRIVATE */
#define F2_MASK 0xffffffffUL

struct f2_waitv {
	uint64_t val, uaddr;
	uint32_t flags, reserved;
};

static struct page_uint {
	_Alignas(PAGE) atomic_uint v;
} f2_ping, f2_pong, f2_still, f2_from, f2_to;
static struct {
	_Alignas(PAGE) long lost, timed_ok, requeue_ret, requeue_errno, waitv_errno, flags_ok;
} f2;

static long f2_wait(atomic_uint *w, unsigned int val, const struct timespec *abs, int clock)
{
	return syscall(SYS_futex_wait, w, (unsigned long)val, F2_MASK, F2_U32_PRIVATE, abs, clock);
}

static long f2_wake(atomic_uint *w, int nr)
{
	return syscall(SYS_futex_wake, w, F2_MASK, nr, F2_U32_PRIVATE);
}

static struct timespec f2_in(int clock, long ms)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void sleep_ms(long ms);

/* Sleeps in futex_wait until *w == want; returns how many 2 s waits timed out. */
static long f2_await(atomic_uint *w, unsigned int want)
{
	unsigned int v;
	long timeouts = 0;

	while ((v = atomic_load(w)) != want) {
		struct timespec ts = f2_in(CLOCK_MONOTONIC, 2000);

		if (f2_wait(w, v, &ts, CLOCK_MONOTONIC) && errno == ETIMEDOUT)
			timeouts++;
	}
	return timeouts;
}

static void run_futex2(void)
{
	static const int clocks[2] = { CLOCK_MONOTONIC, CLOCK_REALTIME };
	struct f2_waitv v = { 0, (uintptr_t)&f2_still.v, F2_U32_PRIVATE, 0 };
	struct timespec ts;
	unsigned long r;
	int i;

	for (r = 1; r <= iters; r++) {
		f2.lost += f2_await(&f2_ping.v, (unsigned int)r);
		atomic_store(&f2_pong.v, (unsigned int)r);
		f2_wake(&f2_pong.v, 1);
	}
	/* 300 ms on a word nobody changes: ETIMEDOUT, not before and not much after. */
	f2.timed_ok = 1;
	for (i = 0; i < 2; i++) {
		unsigned long t0 = now_ns(), ms;
		long ret;

		ts = f2_in(clocks[i], 300);
		ret = f2_wait(&f2_still.v, 0, &ts, clocks[i]);
		ms = (now_ns() - t0) / 1000000;
		if (ret != -1 || errno != ETIMEDOUT || ms < 300 || ms > 10000)
			f2.timed_ok = 0;
	}
	/* Requeued by the main thread from f2_from to f2_to, and woken there. */
	ts = f2_in(CLOCK_MONOTONIC, 30000);
	f2.requeue_ret = f2_wait(&f2_from.v, 0, &ts, CLOCK_MONOTONIC);
	f2.requeue_errno = f2.requeue_ret ? errno : 0;
	ts = f2_in(CLOCK_MONOTONIC, 100);
	f2.waitv_errno = syscall(SYS_futex_waitv, &v, 1, 0, &ts, CLOCK_MONOTONIC) ? errno : 0;
	f2.flags_ok =
		syscall(SYS_futex_wake, &f2_still.v, F2_MASK, 1, 0x03 | 128) == -1 && errno == EINVAL &&
		syscall(SYS_futex_wake, &f2_still.v, F2_MASK, 1, F2_U32_PRIVATE | 0x100) == -1 &&
		errno == EINVAL && syscall(SYS_futex_wake, &f2_still.v, 0UL, 1, F2_U32_PRIVATE) == -1 &&
		errno == EINVAL;
}

/* The main thread's side; returns non-zero if something failed. */
static int futex2_home(void)
{
	struct f2_waitv pair[2] = { { 0, (uintptr_t)&f2_from.v, F2_U32_PRIVATE, 0 },
				    { 0, (uintptr_t)&f2_to.v, F2_U32_PRIVATE, 0 } };
	long lost = 0, moved = 0, woken = 0;
	unsigned long r;
	int tries;

	for (r = 1; r <= iters; r++) {
		atomic_store(&f2_ping.v, (unsigned int)r);
		f2_wake(&f2_ping.v, 1);
		lost += f2_await(&f2_pong.v, (unsigned int)r);
	}
	/* Until the worker sleeps on f2_from (at most 60 s): move it to f2_to. */
	for (tries = 0; tries < 6000 && moved == 0; tries++) {
		moved = syscall(SYS_futex_requeue, pair, 0, 0, 1);
		if (moved == 0)
			sleep_ms(10);
	}
	if (moved == 1) {
		atomic_store(&f2_to.v, 1);
		woken = f2_wake(&f2_to.v, 1);
	}
	while (atomic_load_explicit(&done_count.v, memory_order_acquire) < 1)
		sleep_ms(10);
	printf("futex2 rounds=%lu lost=%ld timed=%s requeue=%s waitv=%s flags=%s\n", iters,
	       lost + f2.lost, f2.timed_ok ? "ok" : "bad",
	       moved == 1 && woken == 1 && f2.requeue_ret == 0 ? "ok" : "bad",
	       f2.waitv_errno == ENOSYS ? "ENOSYS" : f2.waitv_errno ? strerror((int)f2.waitv_errno) : "0",
	       f2.flags_ok ? "ok" : "bad");
	if (moved != 1 || woken != 1 || f2.requeue_ret)
		printf("futex2 requeue moved=%ld woken=%ld worker_ret=%ld errno=%ld\n", moved, woken,
		       f2.requeue_ret, f2.requeue_errno);
	fflush(stdout);
	return lost + f2.lost || !f2.timed_ok || moved != 1 || woken != 1 || f2.requeue_ret ||
	       f2.waitv_errno != ENOSYS || !f2.flags_ok;
}

/*
 * timedwait: worker 0 waits (FUTEX_WAIT_BITSET, absolute 60 s timeout) from before the
 * process is distributed; the move of worker 1 interrupts the wait, which restarts; once
 * GOFILE exists, worker 1 (moved away) stores 1 and wakes it. Worker 0 notes how its
 * last wait ended and how long it waited in all.
 */
static struct page_uint tw_word;
static struct {
	_Alignas(PAGE) long ret, err, waited_ms;
} tw;

static void run_timedwait_sleeper(void)
{
	unsigned long t0 = now_ns();
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 60;
	atomic_fetch_add_explicit(&ready_count.v, 1, memory_order_release);
	while (!atomic_load(&tw_word.v)) {
		tw.ret = syscall(SYS_futex, (unsigned int *)&tw_word.v,
				 FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &ts, NULL,
				 FUTEX_BITSET_MATCH_ANY);
		tw.err = tw.ret ? errno : 0;
		if (tw.ret && tw.err == ETIMEDOUT)
			break;
	}
	tw.waited_ms = (long)((now_ns() - t0) / 1000000);
}

static void run_timedwait_waker(void)
{
	sleep_ms(1000);
	atomic_store(&tw_word.v, 1);
	syscall(SYS_futex, (unsigned int *)&tw_word.v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/*
 * robust: the worker takes a robust mutex, waits until the main thread is about to lock
 * it too, and ends holding it; the kernel marks the mutex's word as its
 * owner's death and wakes the main thread, whose lock returns EOWNERDEAD.
 */
static struct {
	_Alignas(PAGE) pthread_mutex_t lock;
} rb;
static struct page_uint rb_locked, rb_main_waiting;

static void run_robust(void)
{
	pthread_mutex_lock(&rb.lock);
	atomic_store(&rb_locked.v, 1);
	SPIN_UNTIL(atomic_load(&rb_main_waiting.v));
	sleep_ms(500);
	/* Returns (the thread ends) holding the lock. Not pthread_exit(): it loads libgcc_s
	 * for unwinding, a file mapping, which a thread away from home cannot make yet. */
}

/* The main thread's side; returns non-zero if the lock did not say EOWNERDEAD. */
static int robust_home(void)
{
	unsigned long t0;
	int err;

	while (!atomic_load(&rb_locked.v))
		sleep_ms(10);
	atomic_store(&rb_main_waiting.v, 1);
	t0 = now_ns();
	err = pthread_mutex_lock(&rb.lock);
	printf("robust lock=%s waited_ms=%lu\n", err == EOWNERDEAD ? "EOWNERDEAD" : strerror(err),
	       (now_ns() - t0) / 1000000);
	if (err == EOWNERDEAD) {
		pthread_mutex_consistent(&rb.lock);
		pthread_mutex_unlock(&rb.lock);
	} else if (!err) {
		pthread_mutex_unlock(&rb.lock);
	}
	fflush(stdout);
	return err != EOWNERDEAD;
}

/* exitstarted: the thread the worker starts where it runs ends the whole process. */
static int exit_from_started;

static void *exit_group_thread(void *arg)
{
	(void)arg;
	syscall(SYS_exit_group, (int)value);
	return NULL;
}

static void *worker_main(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct worker *w = &workers[me];
	unsigned long i;

	tids.tid[me] = (pid_t)syscall(SYS_gettid);
	/* arenas: the worker's malloc arena, made now, before the process is distributed. */
	if (mode == ARENAS && !(ar.first[me] = malloc(64)))
		_exit(2);
	/* churn: worker 1's reservation, made before the process is distributed. */
	if (mode == CHURN && me == 1) {
		ch.reserved = mmap(NULL, CHURN_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0);
		if (ch.reserved == MAP_FAILED)
			_exit(2);
	}
	if (mode == TIMEDWAIT && me == 0) {
		run_timedwait_sleeper();
		atomic_fetch_add_explicit(&done_count.v, 1, memory_order_release);
		return NULL;
	}
	atomic_fetch_add_explicit(&ready_count.v, 1, memory_order_release);
	wait_go();

	switch (mode) {
	case COUNTER:
		run_counter(w);
		break;
	case MUTEX:
		run_mutex(w);
		break;
	case QUEUE:
		run_queue(me, w);
		break;
	case BARRIER:
		run_barrier(me, w);
		break;
	case MP:
		if (me == 0)
			run_mp_writer();
		else
			run_mp_reader(w);
		break;
	case SB:
		run_sb(me, w);
		break;
	case EXITCODE:
		if (exit_from_started) {
			pthread_t t;

			if (pthread_create(&t, NULL, exit_group_thread, NULL))
				break;
			SPIN_UNTIL(0);
		}
		syscall(SYS_exit_group, (int)value);
		break; /* not reached */
	case JOIN:
		for (i = 0; i < JOIN_SPINS; i++)
			atomic_store_explicit(&w->count, i + 1, memory_order_relaxed);
		break;
	case SIGNAL:
		SPIN_UNTIL(atomic_load(&handled.v));
		break;
	case SLEEPY:
		SPIN_UNTIL(0);
		break;
	case FORK:
		SPIN_UNTIL(atomic_load(&handled.v));
		break;
	case PINGPONG:
		run_pingpong(me);
		break;
	case LOCKLOOP:
		SPIN_UNTIL(atomic_load(&handled.v));
		break;
	case WANDER:
		run_wander(w);
		break;
	case IDS:
		run_ids();
		break;
	case COMPUTE:
		run_compute(me);
		break;
	case MAPPINGS:
		run_mappings();
		break;
	case NEWMEM:
		run_newmem();
		break;
	case EXEC:
		run_exec();
		break;
	case ARENAS:
		run_arenas(me);
		break;
	case CHURN:
		run_churn(me);
		break;
	case FUTEX2:
		run_futex2();
		break;
	case TIMEDWAIT:
		run_timedwait_waker();
		break;
	case ROBUST:
		atomic_fetch_add_explicit(&done_count.v, 1, memory_order_release);
		run_robust();
		break;
	case DLOPEN:
		run_dlopen();
		break;
	}
	atomic_fetch_add_explicit(&done_count.v, 1, memory_order_release);
	return (void *)(intptr_t)value;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

static int usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s counter THREADS ITERS GOFILE   (THREADS 1-%d)\n"
		"       %s mutex THREADS ITERS GOFILE\n"
		"       %s queue ITEMS GOFILE\n"
		"       %s barrier THREADS ROUNDS GOFILE\n"
		"       %s mp ITERS GOFILE\n"
		"       %s sb ITERS GOFILE\n"
		"       %s exitcode CODE GOFILE           (CODE 0-255)\n"
		"       %s exitstarted CODE GOFILE\n"
		"       %s join VALUE GOFILE\n"
		"       %s signal GOFILE\n"
		"       %s sleepy GOFILE\n"
		"       %s fork GOFILE\n"
		"       %s pingpong ROUNDS GOFILE\n"
		"       %s lockloop ITERS GOFILE\n"
		"       %s wander THREADS GOFILE\n"
		"       %s ids GOFILE\n"
		"       %s compute THREADS ROUNDS GOFILE [PASSES]\n"
		"       %s mappings N GOFILE              (N 1-1000)\n"
		"       %s newmem GOFILE\n"
		"       %s exec GOFILE\n"
		"       %s arenas GOFILE\n"
		"       %s churn GOFILE\n"
		"       %s futex2 ROUNDS GOFILE\n"
		"       %s timedwait GOFILE\n"
		"       %s robust GOFILE\n"
		"       %s dlopen LIBRARY GOFILE\n",
		argv0, MAX_THREADS, argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0,
		argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0, argv0,
		argv0, argv0, argv0, argv0);
	return 2;
}

/* A whole decimal number in [min, max]. */
static int parse(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *gofile;
	static char halffile[PATH_MAX], stopfile[PATH_MAX], endfile[PATH_MAX];
	unsigned long go_ns = 0;
	unsigned long before_ns = 0;
	pthread_t th[MAX_THREADS];
	void *ret;
	long n;
	int i, err, bad = 0;

	if (argc < 2)
		return usage(argv[0]);
	if (((!strcmp(argv[1], "counter") || !strcmp(argv[1], "mutex") ||
	      !strcmp(argv[1], "barrier") || !strcmp(argv[1], "compute")) && argc == 5) ||
	    (!strcmp(argv[1], "compute") && argc == 6)) {
		mode = !strcmp(argv[1], "compute") ? COMPUTE :
		       argv[1][0] == 'c'           ? COUNTER :
		       argv[1][0] == 'm'           ? MUTEX :
						     BARRIER;
		if (parse(argv[2], 1, MAX_THREADS, &n))
			return usage(argv[0]);
		nthreads = (int)n;
		if (parse(argv[3], 1, 1000000000L, &n))
			return usage(argv[0]);
		iters = (unsigned long)n;
		if (argc == 6) {
			if (parse(argv[5], 1, 1000000L, &n))
				return usage(argv[0]);
			passes = (unsigned long)n;
		}
	} else if ((!strcmp(argv[1], "mp") || !strcmp(argv[1], "sb") ||
		    !strcmp(argv[1], "queue")) && argc == 4) {
		mode = argv[1][0] == 'm' ? MP : argv[1][0] == 's' ? SB : QUEUE;
		if (parse(argv[2], 1, 1000000000L, &n))
			return usage(argv[0]);
		iters = (unsigned long)n;
		nthreads = 2;
	} else if ((!strcmp(argv[1], "exitcode") || !strcmp(argv[1], "exitstarted")) &&
		   argc == 4) {
		exit_from_started = argv[1][4] == 's';
		mode = EXITCODE;
		if (parse(argv[2], 0, 255, &value))
			return usage(argv[0]);
		nthreads = 1;
	} else if (!strcmp(argv[1], "join") && argc == 4) {
		mode = JOIN;
		if (parse(argv[2], LONG_MIN, LONG_MAX, &value))
			return usage(argv[0]);
		nthreads = 1;
	} else if ((!strcmp(argv[1], "pingpong") || !strcmp(argv[1], "lockloop")) && argc == 4) {
		mode = argv[1][0] == 'p' ? PINGPONG : LOCKLOOP;
		if (parse(argv[2], 1, 100000000L, &n))
			return usage(argv[0]);
		iters = (unsigned long)n;
		nthreads = mode == PINGPONG ? 2 : 1;
		if (mode == PINGPONG && !(pp_ns = calloc(iters, sizeof(*pp_ns))))
			return 2;
	} else if (!strcmp(argv[1], "robust") && argc == 3) {
		mode = ROBUST;
		nthreads = 1;
	} else if (!strcmp(argv[1], "timedwait") && argc == 3) {
		mode = TIMEDWAIT;
		nthreads = 2;
	} else if (!strcmp(argv[1], "futex2") && argc == 4) {
		mode = FUTEX2;
		if (parse(argv[2], 1, 100000L, &n))
			return usage(argv[0]);
		iters = (unsigned long)n;
		nthreads = 1;
	} else if (!strcmp(argv[1], "wander") && argc == 4) {
		mode = WANDER;
		if (parse(argv[2], 1, MAX_THREADS, &n))
			return usage(argv[0]);
		nthreads = (int)n;
	} else if (!strcmp(argv[1], "mappings") && argc == 4) {
		mode = MAPPINGS;
		if (parse(argv[2], 1, 1000, &n))
			return usage(argv[0]);
		iters = (unsigned long)n;
		nthreads = 1;
		if (map_areas(iters)) {
			perror("ssi-threads: mappings");
			return 2;
		}
	} else if (!strcmp(argv[1], "dlopen") && argc == 4) {
		mode = DLOPEN;
		nthreads = 1;
		dl_library = argv[2];
	} else if (!strcmp(argv[1], "ids") && argc == 3) {
		mode = IDS;
		nthreads = 1;
	} else if ((!strcmp(argv[1], "newmem") || !strcmp(argv[1], "exec")) && argc == 3) {
		mode = argv[1][0] == 'n' ? NEWMEM : EXEC;
		nthreads = 1;
	} else if ((!strcmp(argv[1], "arenas") || !strcmp(argv[1], "churn")) && argc == 3) {
		mode = argv[1][0] == 'a' ? ARENAS : CHURN;
		nthreads = 2;
	} else if ((!strcmp(argv[1], "signal") || !strcmp(argv[1], "sleepy") ||
		    !strcmp(argv[1], "fork")) && argc == 3) {
		mode = argv[1][0] == 'f' ? FORK : argv[1][1] == 'i' ? SIGNAL : SLEEPY;
		nthreads = 1;
	} else {
		return usage(argv[0]);
	}
	gofile = mode == COMPUTE && argc == 6 ? argv[4] : argv[argc - 1];
	if (!*gofile || strlen(gofile) > PATH_MAX - 8)
		return usage(argv[0]);
	snprintf(halffile, sizeof(halffile), "%s.half", gofile);
	snprintf(stopfile, sizeof(stopfile), "%s.stop", gofile);
	snprintf(endfile, sizeof(endfile), "%s.end", gofile);
	if (mode == SIGNAL) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigusr1;
		sigaction(SIGUSR1, &sa, NULL);
	}
	if (mode == IDS) {
		struct sigaction sa;

		main_thread = pthread_self();
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_ids_usr1;
		sigaction(SIGUSR1, &sa, NULL);
		sa.sa_handler = on_ids_usr2;
		sigaction(SIGUSR2, &sa, NULL);
		sa.sa_handler = on_ids_urg;
		sigaction(SIGURG, &sa, NULL);
	}
	if (mode == ROBUST) {
		pthread_mutexattr_t attr;

		pthread_mutexattr_init(&attr);
		pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init(&rb.lock, &attr);
		pthread_mutexattr_destroy(&attr);
	}
	if (mode == BARRIER) {
		err = pthread_barrier_init(&rounds.b, NULL, (unsigned int)nthreads);
		if (err) {
			fprintf(stderr, "ssi-threads: pthread_barrier_init: %s\n", strerror(err));
			return 2;
		}
	}

	/* The workers' only calls into libc: bound here, so that a worker's first call
	 * does not run the dynamic linker's symbol lookup. */
	sched_yield();
	syscall(SYS_gettid);
	if (mode == WANDER) {
		struct utsname u;

		uname(&u);
	}
	for (i = 0; i < nthreads; i++) {
		err = pthread_create(&th[i], NULL, worker_main, (void *)(intptr_t)i);
		if (err) {
			fprintf(stderr, "ssi-threads: pthread_create: %s\n", strerror(err));
			return 2;
		}
	}
	while (atomic_load_explicit(&ready_count.v, memory_order_acquire) < (unsigned long)nthreads)
		sleep_ms(1);
	printf("ready %d\n", getpid());
	for (i = 0; i < nthreads; i++)
		printf("tid %d %d\n", i, tids.tid[i]);
	fflush(stdout);

	if (mode == LOCKLOOP)
		before_ns = lock_ns();
	while (access(gofile, F_OK))
		sleep_ms(10);
	go_ns = now_ns();
	atomic_store_explicit(&go_flag.v, 1, memory_order_release);
	if (mode == LOCKLOOP) {
		printf("lockloop before_ns=%lu after_ns=%lu\n", before_ns, lock_ns());
		atomic_store(&handled.v, 1);
	}
	if (mode == SIGNAL) {
		signal_target = th[0];
		err = pthread_kill(th[0], SIGUSR1);
		if (err) {
			printf("pthread_kill: %s\n", strerror(err));
			return 1;
		}
	}
	if (mode == FORK) {
		char *const args[] = { "/bin/true", NULL };
		pid_t child = fork(), spawned;
		int status = -1, fork_errno = errno;

		if (child == 0)
			_exit(0);
		if (child > 0) {
			waitpid(child, &status, 0);
			fork_errno = 0;
		}
		printf("fork errno=%d\n", fork_errno);
		err = posix_spawn(&spawned, args[0], NULL, NULL, args, environ);
		if (!err)
			waitpid(spawned, &status, 0);
		printf("spawn status=%d\n", err ? -err : status);
		fflush(stdout);
		atomic_store(&handled.v, 1);
	}
	if (mode == NEWMEM)
		bad = newmem_home();
	if (mode == DLOPEN)
		dlopen_home();
	if (mode == ARENAS)
		bad = arenas_home();
	if (mode == FUTEX2)
		bad = futex2_home();
	if (mode == ROBUST)
		bad = robust_home();
	if (mode == COUNTER || mode == MUTEX || mode == CHURN) {
		while (access(halffile, F_OK))
			sleep_ms(10);
		atomic_store_explicit(&half_flag.v, 1, memory_order_release);
	}
	if (mode == WANDER) {
		while (access(stopfile, F_OK))
			sleep_ms(10);
		/* Every worker still runs: none may look ended to a join. */
		for (i = 0; i < nthreads; i++) {
			err = pthread_tryjoin_np(th[i], &ret);
			if (err != EBUSY) {
				printf("wander: worker %d looks ended while it runs (tryjoin: %s)\n", i,
				       strerror(err));
				return 1;
			}
		}
		atomic_store_explicit(&stop_flag.v, 1, memory_order_release);
	}

	if (mode != EXITCODE && mode != SLEEPY) {
		while (atomic_load_explicit(&done_count.v, memory_order_acquire) < (unsigned long)nthreads)
			sleep_ms(10);
		printf("workers done\n");
		if (mode == COMPUTE) {
			unsigned long elapsed = now_ns() - go_ns, lock_ns = 0;

			for (i = 0; i < nthreads; i++)
				lock_ns += workers[i].lock_ns;
			for (i = 0; i < nthreads; i++)
				printf("compute worker %d ms=%lu lock_ms=%lu hold_ms=%lu work_ms=%lu "
				       "user_ms=%ld sys_ms=%ld minflt=%ld nvcsw=%ld nivcsw=%ld\n", i,
				       (workers[i].end_ns - workers[i].start_ns) / 1000000,
				       workers[i].lock_ns / 1000000, workers[i].hold_ns / 1000000,
				       workers[i].work_ns / 1000000,
				       workers[i].usage.ru_utime.tv_sec * 1000 +
					       workers[i].usage.ru_utime.tv_usec / 1000,
				       workers[i].usage.ru_stime.tv_sec * 1000 +
					       workers[i].usage.ru_stime.tv_usec / 1000,
				       workers[i].usage.ru_minflt, workers[i].usage.ru_nvcsw,
				       workers[i].usage.ru_nivcsw);
			printf("compute sum=%lu elapsed_ns=%lu lock_ns=%lu\n", mutexed.counter, elapsed,
			       lock_ns / (unsigned long)nthreads);
			fflush(stdout);
			while (access(endfile, F_OK))
				sleep_ms(10);
		}
		fflush(stdout);
	}
	for (i = 0; i < nthreads; i++) {
		err = pthread_join(th[i], &ret);
		if (err) {
			printf("pthread_join: %s\n", strerror(err));
			return 1;
		}
	}

	switch (mode) {
	case COUNTER: {
		unsigned long expected = (unsigned long)nthreads * iters;
		unsigned long expected_locked = (unsigned long)nthreads * ((iters + 15) / 16);
		unsigned long total = atomic_load(&shared_counter.v), c;

		printf("counter total=%lu expected=%lu locked=%lu expected_locked=%lu\n", total,
		       expected, locked_counter.v, expected_locked);
		bad = total != expected || locked_counter.v != expected_locked;
		for (i = 0; i < nthreads; i++)
			if (atomic_load(&workers[i].count) != iters)
				break;
		if (i == nthreads) {
			printf("per-thread ok\n");
		} else {
			printf("per-thread mismatch");
			for (i = 0; i < nthreads; i++) {
				c = atomic_load(&workers[i].count);
				if (c != iters)
					printf(" %d=%lu", i, c);
			}
			printf(" (expected %lu each)\n", iters);
			bad = 1;
		}
		break;
	}
	case MUTEX: {
		unsigned long expected = (unsigned long)nthreads * iters;

		printf("mutex total=%lu expected=%lu\n", mutexed.counter, expected);
		bad = mutexed.counter != expected;
		break;
	}
	case QUEUE:
		printf("queue items=%lu in_order=%lu\n", workers[1].iterations,
		       workers[1].iterations - workers[1].forbidden);
		bad = workers[1].forbidden || workers[1].iterations != iters;
		break;
	case BARRIER: {
		unsigned long ok = ULONG_MAX;

		for (i = 0; i < nthreads; i++)
			if (workers[i].iterations - workers[i].forbidden < ok)
				ok = workers[i].iterations - workers[i].forbidden;
		printf("barrier rounds=%lu ok=%lu\n", iters, ok);
		bad = ok != iters;
		break;
	}
	case MP:
		printf("mp iterations=%lu forbidden=%lu\n", workers[1].iterations,
		       workers[1].forbidden);
		bad = workers[1].forbidden || workers[1].iterations != iters;
		break;
	case SB:
		printf("sb iterations=%lu forbidden=%lu outcomes 00=%lu 01=%lu 10=%lu 11=%lu\n",
		       workers[0].iterations, workers[0].forbidden, workers[0].outcomes[0],
		       workers[0].outcomes[1], workers[0].outcomes[2], workers[0].outcomes[3]);
		bad = workers[0].forbidden || workers[0].iterations != iters;
		break;
	case EXITCODE:
		printf("exitcode: FAIL: the worker's exit_group(%ld) ended only the worker\n", value);
		bad = 1;
		break;
	case JOIN:
		printf("joined value=%ld\n", (long)(intptr_t)ret);
		bad = (long)(intptr_t)ret != value;
		break;
	case DLOPEN:
		if (!dl.loaded_ok) {
			printf("dlopen failed: %s\n", dl.error);
			bad = 1;
			break;
		}
		printf("dlopen loaded=ok data=%s rodata=%s home_call=%s home_seen=%s away_seen=%s "
		       "unmapped=%s exit=%ld\n",
		       dl.data_ok ? "ok" : "bad", dl.rodata_ok ? "ok" : "bad",
		       dl_home_call_ok ? "ok" : "bad", dl_home_seen_ok ? "ok" : "bad",
		       dl.away_seen_ok ? "ok" : "bad", dl_unmapped_ok ? "ok" : "bad",
		       (long)(intptr_t)ret);
		bad = !(dl.data_ok && dl.rodata_ok && dl_home_call_ok && dl_home_seen_ok &&
			dl.away_seen_ok && dl_unmapped_ok && (intptr_t)ret == DL_EXIT_VALUE);
		break;
	case SIGNAL:
		printf("signal handled_by=%s\n", atomic_load(&handled.v) == 1 ? "worker" : "other");
		bad = atomic_load(&handled.v) != 1;
		break;
	case SLEEPY:
		printf("sleepy: FAIL: the worker ended\n");
		bad = 1;
		break;
	case WANDER: {
		unsigned long sum = 0;
		unsigned int k;

		for (i = 0; i < nthreads; i++)
			sum += atomic_load(&workers[i].count);
		printf("wander total=%lu sum=%lu\n", mutexed.counter, sum);
		bad = mutexed.counter != sum;
		for (i = 0; i < nthreads; i++) {
			printf("path %d:", i);
			for (k = 0; k < workers[i].npath; k++)
				printf(" %s", workers[i].path[k]);
			printf("\ntid %d start=%d end=%d\n", i, tids.tid[i], workers[i].tid_end);
			bad |= tids.tid[i] != workers[i].tid_end;
		}
		break;
	}
	case IDS: {
		int same = ids.pid == getpid() && ids.ppid == getppid() && ids.tid == tids.tid[0];

		printf("ids pid=%ld ppid=%ld tid=%ld %s\n", ids.pid, ids.ppid, ids.tid,
		       same ? "same" : "differ");
		printf("signals pthread_kill=%s kill=%s raise=%s\n",
		       ids.err_pthread_kill ? strerror(ids.err_pthread_kill) :
		       ids.by_pthread_kill == 1 ? "ok" : "wrong-thread",
		       ids.err_kill ? strerror(ids.err_kill) :
		       ids.by_kill == 1 ? "ok" : "wrong-thread",
		       ids.err_raise ? strerror(ids.err_raise) :
		       ids.by_raise == 2 ? "ok" : "wrong-thread");
		bad = !same || ids.by_pthread_kill != 1 || ids.by_kill != 1 || ids.by_raise != 2;
		break;
	}
	case MAPPINGS: {
		unsigned long k, written = 0;

		for (k = 0; k < iters; k++)
			written += *area(k) == 2 * (k + 1);
		printf("mappings n=%lu sum=%lu written=%lu\n", iters, areas_sum, written);
		bad = areas_sum != iters * (iters + 1) / 2 || written != iters;
		break;
	}
	case EXEC:
		printf("exec errno=%d\n", exec_errno);
		bad = exec_errno != EBUSY;
		break;
	case FORK:
	case LOCKLOOP:
	case COMPUTE:
	case NEWMEM:
	case ARENAS:
	case FUTEX2:
		break;
	case ROBUST:
		break;
	case TIMEDWAIT:
		printf("timedwait ret=%ld errno=%s waited_ms=%ld\n", tw.ret,
		       tw.err == ETIMEDOUT ? "ETIMEDOUT" : tw.err ? strerror((int)tw.err) : "0",
		       tw.waited_ms);
		bad = tw.err == ETIMEDOUT;
		break;
	case CHURN:
		printf("churn opened=%lu maps=%lu pages=%s maps=%s\n", ch.checked_pages,
		       ch.checked_maps, ch.pages_ok ? "ok" : "bad", ch.maps_ok ? "ok" : "bad");
		if (ch.err)
			printf("churn: worker 1 failed: %s\n", strerror(ch.err));
		bad = !ch.pages_ok || !ch.maps_ok || ch.err;
		break;
	case PINGPONG:
		printf("pingpong rounds=%lu median_ns=%lu\n", iters, median(pp_ns, iters));
		break;
	}
	return bad;
}
