// SPDX-License-Identifier: GPL-2.0
/*
 * ssi-hostile: a hostile RDMA CM client for the ssi_rdma kernel transport.
 *
 * It connects to a node's RDMA CM listener (RC QP, RDMA_PS_TCP) the way a peer does,
 * then misbehaves, and prints one JSON line saying what happened. It runs inside the
 * test guests over soft-RoCE (rdma_rxe); see tests/cluster/.
 *
 *   ssi-hostile [OPTIONS] SERVER_IP NODE_ID MODE
 *
 * MODE connect: connect with the private data given by the options and report
 *   {"mode":"connect","result":"established"|"rejected"|"unreachable"|"timeout",
 *    "reject_reason":R|null,...}
 * MODE garbage (needs --target-node): connect as NODE_ID, send one valid Ping and wait
 *   for its answer, then send malformed frames one by one (each waiting for its send
 *   completion), then a second valid Ping, and with --oversized one SEND larger than the
 *   receiver's buffers; report {"mode":"garbage","malformed_sent":N,...}.
 *
 * Every wait is bounded (poll() on the CM event channel and the completion channel,
 * under one overall deadline), and alarm() kills the tool after 20 s in any case.
 *
 * Exit status: 0 if the tool worked (whatever the server decided), 1 on a local failure
 * (no RDMA device, allocation failure), 2 on a usage error.
 *
 * Build: gcc -O2 -Wall -Wextra -o ssi-hostile ssi-hostile.c -lrdmacm -libverbs
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* ---- Protocol constants (rust/src/wire.rs, ssi_rdma's CM private data) -------------- */

#define CM_MAGIC 0x43495353u /* "SSIC" little-endian */
#define CM_PROTO 1
#define CM_PRIV_LEN 16
#define CM_PRIV_MAX 56 /* most private data rdma_connect() carries on RDMA_PS_TCP */

#define WIRE_MAGIC 0x31495353u /* "SSI1" little-endian */
#define WIRE_VERSION 2
#define HEADER_LEN 24
#define FLAG_RESPONSE 0x0001
#define MAX_PING 1024
#define RECEIVER_BUF 4184 /* HEADER_LEN + MAX_PAYLOAD on the kernel side */

enum msg_type {
	MSG_HELLO = 1,
	MSG_HEARTBEAT = 2,
	MSG_PING = 3,
	MSG_ERROR = 9,
};

#define DEFAULT_PORT 7471
/* The build passes the ABI of rust/src/ioctl.rs (scripts/build.sh). */
#ifndef DEFAULT_ABI
#error "build with -DDEFAULT_ABI=N (scripts/build.sh hostile)"
#endif

/* ---- Limits of this tool ------------------------------------------------------------ */

#define OVERALL_ALARM_S 20
#define OVERALL_BUDGET_MS 19000 /* every wait ends before this, the alarm is a backstop */
#define RESOLVE_MS 1500
#define CONNECT_MS 5000
#define PING_WAIT_MS 3000
#define SEND_WAIT_MS 1000
#define OVERSIZED_WAIT_MS 5000
#define OVERSIZED_LEN 8192
#define NRECV 8
#define RECV_TAG (1ull << 63) /* in the wr_id of RECVs: an error completion has no opcode */
#define RECV_LEN 8192 /* larger than any frame the kernel sends */
#define SEND_LEN 8192
_Static_assert(OVERSIZED_LEN > RECEIVER_BUF, "the oversized SEND must not fit");
_Static_assert(OVERSIZED_LEN <= SEND_LEN, "the oversized SEND must fit our buffer");

#define PING_SEQ 42
#define PING_AFTER_SEQ 43
#define GARBAGE_SEQ 100

/* ---- Small helpers ------------------------------------------------------------------ */

static uint64_t start_ms;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A deadline `ms` from now, never past the overall budget. */
static uint64_t deadline_in(int ms)
{
	uint64_t d = now_ms() + (uint64_t)ms, end = start_ms + OVERALL_BUDGET_MS;

	return d < end ? d : end;
}

static int remaining(uint64_t deadline)
{
	uint64_t n = now_ms();

	return n >= deadline ? 0 : (int)(deadline - n);
}

static void warnx_(const char *fmt, ...)
{
	va_list ap;

	fputs("ssi-hostile: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void on_alarm(int sig)
{
	static const char msg[] = "ssi-hostile: overall timeout, giving up\n";
	ssize_t r;

	(void)sig;
	r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Writes a frame header; returns HEADER_LEN. */
static size_t put_header(uint8_t *b, uint32_t magic, uint8_t version, uint8_t type,
			 uint16_t flags, uint16_t src, uint16_t dst, uint32_t seq,
			 uint32_t len, uint32_t reserved)
{
	put_le32(b, magic);
	b[4] = version;
	b[5] = type;
	put_le16(b + 6, flags);
	put_le16(b + 8, src);
	put_le16(b + 10, dst);
	put_le32(b + 12, seq);
	put_le32(b + 16, len);
	put_le32(b + 20, reserved);
	return HEADER_LEN;
}

/* A well-formed Ping request carrying `data`; returns the frame length. */
static size_t ping_frame(uint8_t *b, uint16_t src, uint16_t dst, uint32_t seq,
			 const char *data)
{
	size_t n = strlen(data);

	put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_PING, 0, src, dst, seq,
		   (uint32_t)(2 + n), 0);
	put_le16(b + HEADER_LEN, (uint16_t)n);
	memcpy(b + HEADER_LEN + 2, data, n);
	return HEADER_LEN + 2 + n;
}

/* ---- Options ------------------------------------------------------------------------ */

struct opts {
	const char *server;
	const char *src;
	struct sockaddr_in dst_addr, src_addr;
	uint16_t port;
	uint32_t abi;
	int priv_len;
	uint32_t incarnation;
	uint16_t node;
	int target_node; /* -1: not given */
	bool oversized;
	bool hello;
	bool dump_frames;
	const char *mode;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ssi-hostile [OPTIONS] SERVER_IP NODE_ID MODE\n"
		"\n"
		"A hostile RDMA CM client of the ssi_rdma transport. MODE:\n"
		"  connect   connect with the private data given by the options and report\n"
		"            established | rejected (with the reject reason) | unreachable | timeout\n"
		"  garbage   connect as NODE_ID, send a valid Ping, malformed frames, another\n"
		"            valid Ping (and with --oversized a SEND larger than the receiver's\n"
		"            buffers); needs --target-node\n"
		"\n"
		"Options:\n"
		"  --port P            RDMA CM port of the server (default %d)\n"
		"  --abi N             ABI version in the private data (default %d)\n"
		"  --priv-len N        send only the first N bytes of the 16-byte private data\n"
		"                      (0..%d; beyond 16, zero padding)\n"
		"  --incarnation N     incarnation in the private data (default: random, non-zero)\n"
		"  --target-node T     the server's node id (garbage mode)\n"
		"  --oversized         garbage mode: end with an %d-byte SEND\n"
		"  --hello             garbage mode: send a Hello frame first\n"
		"  --src IP            local address to connect from\n"
		"  --dump-frames       garbage mode: print the frames it would send (name and\n"
		"                      hex, one a line) and exit without connecting\n"
		"  -h, --help          this help\n"
		"\n"
		"Prints one JSON line. Exit status: 0 if the tool worked (whatever the server\n"
		"decided), 1 on a local failure, 2 on a usage error.\n",
		DEFAULT_PORT, DEFAULT_ABI, CM_PRIV_MAX, OVERSIZED_LEN);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

#define USAGE_ERROR(...)                  \
	do {                              \
		warnx_(__VA_ARGS__);      \
		usage(stderr);            \
		exit(2);                  \
	} while (0)

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "abi", required_argument, NULL, 'a' },
		{ "priv-len", required_argument, NULL, 'l' },
		{ "incarnation", required_argument, NULL, 'n' },
		{ "target-node", required_argument, NULL, 't' },
		{ "oversized", no_argument, NULL, 'O' },
		{ "hello", no_argument, NULL, 'H' },
		{ "src", required_argument, NULL, 's' },
		{ "dump-frames", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	bool incarnation_given = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->port = DEFAULT_PORT;
	o->abi = DEFAULT_ABI;
	o->priv_len = CM_PRIV_LEN;
	o->target_node = -1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_uint(optarg, 65535, &v) || v == 0)
				USAGE_ERROR("--port %s: not a port (1..65535)", optarg);
			o->port = (uint16_t)v;
			break;
		case 'a':
			if (!parse_uint(optarg, UINT32_MAX, &v))
				USAGE_ERROR("--abi %s: not a 32-bit number", optarg);
			o->abi = (uint32_t)v;
			break;
		case 'l':
			if (!parse_uint(optarg, CM_PRIV_MAX, &v))
				USAGE_ERROR("--priv-len %s: not in 0..%d", optarg, CM_PRIV_MAX);
			o->priv_len = (int)v;
			break;
		case 'n':
			if (!parse_uint(optarg, UINT32_MAX, &v))
				USAGE_ERROR("--incarnation %s: not a 32-bit number", optarg);
			o->incarnation = (uint32_t)v;
			incarnation_given = true;
			break;
		case 't':
			if (!parse_uint(optarg, 65535, &v))
				USAGE_ERROR("--target-node %s: not a node id (0..65535)", optarg);
			o->target_node = (int)v;
			break;
		case 'O':
			o->oversized = true;
			break;
		case 'H':
			o->hello = true;
			break;
		case 's':
			o->src = optarg;
			break;
		case 'D':
			o->dump_frames = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (argc - optind != 3)
		USAGE_ERROR("expected SERVER_IP NODE_ID MODE");
	o->server = argv[optind];
	o->dst_addr.sin_family = AF_INET;
	o->dst_addr.sin_port = htons(o->port);
	if (inet_pton(AF_INET, o->server, &o->dst_addr.sin_addr) != 1)
		USAGE_ERROR("SERVER_IP %s: not an IPv4 address", o->server);
	o->src_addr.sin_family = AF_INET;
	if (o->src && inet_pton(AF_INET, o->src, &o->src_addr.sin_addr) != 1)
		USAGE_ERROR("--src %s: not an IPv4 address", o->src);
	if (!parse_uint(argv[optind + 1], 65535, &v))
		USAGE_ERROR("NODE_ID %s: not a node id (0..65535)", argv[optind + 1]);
	o->node = (uint16_t)v;
	o->mode = argv[optind + 2];
	if (strcmp(o->mode, "connect") && strcmp(o->mode, "garbage"))
		USAGE_ERROR("unknown MODE %s (connect or garbage)", o->mode);
	if (!strcmp(o->mode, "garbage") && o->target_node < 0)
		USAGE_ERROR("garbage mode needs --target-node T (the server's node id)");
	if (strcmp(o->mode, "garbage") && (o->oversized || o->hello || o->dump_frames))
		USAGE_ERROR("--oversized, --hello and --dump-frames are for garbage mode");
	if (!incarnation_given)
		o->incarnation = ((uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL)) | 1;
}

/* ---- The connection ----------------------------------------------------------------- */

struct conn {
	struct rdma_event_channel *ec;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	bool qp;
	struct ibv_mr *send_mr, *recv_mr;
	uint8_t *send_buf, *recv_buf;

	bool established;
	bool disconnected; /* RDMA_CM_EVENT_DISCONNECTED (or device removal) seen */
	bool qp_error;	   /* an error completion was seen */

	uint64_t next_wr;      /* send wr_ids count up from 1 */
	uint64_t wr_done;      /* wr_id of the last send completion */
	enum ibv_wc_status wr_status;
	int send_errors;

	int frames_received;   /* RECV completions carrying a frame */
	int bad_frames_received; /* ... that we could not make sense of */
	uint32_t types_seen;   /* bit t: a frame of type t (< 32) arrived */
	uint8_t answered[256]; /* answered[seq]: type of the response with that seq (0: none) */
	bool ping_echo_ok;     /* the answer of PING_SEQ echoed "hostile" */
	uint64_t ping_answer_us;
};

static struct conn C;

/*
 * Reports a local failure as JSON and exits 1. Without any RDMA device the server is
 * "unreachable" from here; any other failure is an "error".
 */
static void local_failure(const struct opts *o, const char *what, int err)
{
	bool nodev = err == ENODEV || err == ENOENT;
	const char *hint = nodev ? " (no RDMA device: is rdma_rxe set up?)" : "";

	warnx_("%s: %s%s", what, strerror(err), hint);
	printf("{\"mode\":\"%s\",\"result\":\"%s\",\"reject_reason\":null,"
	       "\"error\":\"%s: %s%s\"}\n",
	       o->mode, nodev ? "unreachable" : "error", what, strerror(err), hint);
	fflush(stdout);
	exit(1);
}

static int post_recv(int i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(C.recv_buf + (size_t)i * RECV_LEN),
		.length = RECV_LEN,
		.lkey = C.recv_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = RECV_TAG | (uint64_t)i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(C.id->qp, &wr, &bad);
}

/* Looks at a received frame: counts it, notes responses. */
static void note_frame(const uint8_t *b, uint32_t len)
{
	uint16_t flags;
	uint32_t seq, plen;
	uint8_t type;

	C.frames_received++;
	if (len < HEADER_LEN || get_le32(b) != WIRE_MAGIC) {
		C.bad_frames_received++;
		return;
	}
	type = b[5];
	flags = get_le16(b + 6);
	seq = get_le32(b + 12);
	plen = get_le32(b + 16);
	if (type < 32)
		C.types_seen |= 1u << type;
	if (!(flags & FLAG_RESPONSE) || seq >= 256)
		return;
	if (!C.answered[seq] && seq == PING_SEQ && type == MSG_PING) {
		C.ping_answer_us = now_us();
		C.ping_echo_ok = plen == 9 && len >= HEADER_LEN + 9 &&
				 get_le16(b + HEADER_LEN) == 7 &&
				 !memcmp(b + HEADER_LEN + 2, "hostile", 7);
	}
	C.answered[seq] = type ? type : 0xff;
}

static void handle_wc(const struct ibv_wc *wc)
{
	if (wc->wr_id & RECV_TAG) {
		int i = (int)(wc->wr_id & ~RECV_TAG);

		if (wc->status != IBV_WC_SUCCESS) {
			if (wc->status != IBV_WC_WR_FLUSH_ERR)
				warnx_("receive completion: %s", ibv_wc_status_str(wc->status));
			C.qp_error = true;
			return;
		}
		note_frame(C.recv_buf + (size_t)i * RECV_LEN, wc->byte_len);
		if (post_recv(i))
			C.qp_error = true;
		return;
	}
	C.wr_done = wc->wr_id;
	C.wr_status = wc->status;
	if (wc->status != IBV_WC_SUCCESS) {
		C.send_errors++;
		C.qp_error = true;
	}
}

static void drain_cq(void)
{
	struct ibv_wc wc[16];
	int n, i;

	while ((n = ibv_poll_cq(C.cq, 16, wc)) > 0)
		for (i = 0; i < n; i++)
			handle_wc(&wc[i]);
}

static void handle_late_cm_event(struct rdma_cm_event *ev)
{
	switch (ev->event) {
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		C.disconnected = true;
		break;
	default:
		break;
	}
}

/*
 * Processes completions and CM events until `done()` is true or `deadline` passes;
 * returns done()'s last value.
 */
static bool pump(uint64_t deadline, bool (*done)(void *), void *arg)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = C.ch->fd, .events = POLLIN },
			{ .fd = C.ec->fd, .events = POLLIN },
		};
		int r;

		drain_cq();
		if (done(arg))
			return true;
		r = poll(pfd, 2, remaining(deadline));
		if (r < 0 && errno != EINTR) {
			warnx_("poll: %s", strerror(errno));
			return done(arg);
		}
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			struct ibv_cq *cq;
			void *ctx;

			if (!ibv_get_cq_event(C.ch, &cq, &ctx)) {
				ibv_ack_cq_events(cq, 1);
				ibv_req_notify_cq(cq, 0);
			}
		}
		if (r > 0 && (pfd[1].revents & POLLIN)) {
			struct rdma_cm_event *ev;

			if (!rdma_get_cm_event(C.ec, &ev)) {
				handle_late_cm_event(ev);
				rdma_ack_cm_event(ev);
			}
		}
		if (r == 0 || remaining(deadline) == 0) {
			drain_cq();
			return done(arg);
		}
	}
}

/* Waits for the next CM event on the channel; NULL on timeout. */
static struct rdma_cm_event *wait_cm_event(uint64_t deadline)
{
	struct rdma_cm_event *ev;

	for (;;) {
		struct pollfd pfd = { .fd = C.ec->fd, .events = POLLIN };
		int r = poll(&pfd, 1, remaining(deadline));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		if (!rdma_get_cm_event(C.ec, &ev))
			return ev;
		if (errno != EAGAIN && errno != EINTR)
			return NULL;
	}
}

/* What connecting gave. */
struct connect_result {
	const char *result; /* established, rejected, unreachable, timeout */
	int reject_reason;  /* -1: none or not ours */
	int reject_status;  /* CM status of a reject/error event, -1: none */
	const char *event;  /* the CM event that ended the attempt, or NULL */
	char detail[160];
};

static void build_priv(const struct opts *o, uint8_t *p)
{
	memset(p, 0, CM_PRIV_MAX);
	put_le32(p, CM_MAGIC);
	p[4] = CM_PROTO;
	p[5] = 0;
	put_le16(p + 6, o->node);
	put_le32(p + 8, o->abi);
	put_le32(p + 12, o->incarnation);
}

/* Allocates the verbs resources once the address is resolved (C.id->verbs is set). */
static void setup_verbs(const struct opts *o)
{
	struct ibv_qp_init_attr qa;
	int i;

	C.pd = ibv_alloc_pd(C.id->verbs);
	if (!C.pd)
		local_failure(o, "ibv_alloc_pd", errno);
	C.ch = ibv_create_comp_channel(C.id->verbs);
	if (!C.ch)
		local_failure(o, "ibv_create_comp_channel", errno);
	C.cq = ibv_create_cq(C.id->verbs, 64, NULL, C.ch, 0);
	if (!C.cq)
		local_failure(o, "ibv_create_cq", errno);
	if (ibv_req_notify_cq(C.cq, 0))
		local_failure(o, "ibv_req_notify_cq", errno);

	memset(&qa, 0, sizeof(qa));
	qa.send_cq = C.cq;
	qa.recv_cq = C.cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = 16;
	qa.cap.max_recv_wr = NRECV;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(C.id, C.pd, &qa))
		local_failure(o, "rdma_create_qp", errno);
	C.qp = true;

	C.send_buf = calloc(1, SEND_LEN);
	C.recv_buf = calloc(NRECV, RECV_LEN);
	if (!C.send_buf || !C.recv_buf)
		local_failure(o, "calloc", ENOMEM);
	C.send_mr = ibv_reg_mr(C.pd, C.send_buf, SEND_LEN, IBV_ACCESS_LOCAL_WRITE);
	C.recv_mr = ibv_reg_mr(C.pd, C.recv_buf, (size_t)NRECV * RECV_LEN,
			       IBV_ACCESS_LOCAL_WRITE);
	if (!C.send_mr || !C.recv_mr)
		local_failure(o, "ibv_reg_mr", errno);
	/* Before connecting, so that whatever the server sends at once finds a buffer. */
	for (i = 0; i < NRECV; i++)
		if (post_recv(i))
			local_failure(o, "ibv_post_recv", errno);
}

static void connect_to(const struct opts *o, struct connect_result *res)
{
	struct sockaddr_in dst = o->dst_addr, src = o->src_addr;
	struct rdma_conn_param param;
	struct rdma_cm_event *ev;
	uint8_t priv[CM_PRIV_MAX];
	enum rdma_cm_event_type want;

	memset(res, 0, sizeof(*res));
	res->reject_reason = -1;
	res->reject_status = -1;

	C.ec = rdma_create_event_channel();
	if (!C.ec)
		local_failure(o, "rdma_create_event_channel", errno);
	if (rdma_create_id(C.ec, &C.id, NULL, RDMA_PS_TCP))
		local_failure(o, "rdma_create_id", errno);

	/* Address, then route. */
	for (want = RDMA_CM_EVENT_ADDR_RESOLVED;;) {
		const char *step = want == RDMA_CM_EVENT_ADDR_RESOLVED ? "rdma_resolve_addr"
									: "rdma_resolve_route";
		int rc = want == RDMA_CM_EVENT_ADDR_RESOLVED
				 ? rdma_resolve_addr(C.id, o->src ? (struct sockaddr *)&src : NULL,
						     (struct sockaddr *)&dst, RESOLVE_MS)
				 : rdma_resolve_route(C.id, RESOLVE_MS);

		if (rc) {
			res->result = "unreachable";
			snprintf(res->detail, sizeof(res->detail), "%s: %s", step,
				 strerror(errno));
			return;
		}
		ev = wait_cm_event(deadline_in(RESOLVE_MS + 500));
		if (!ev) {
			res->result = "timeout";
			snprintf(res->detail, sizeof(res->detail), "%s: no event", step);
			return;
		}
		if (ev->event != want) {
			res->result = "unreachable";
			res->event = rdma_event_str(ev->event);
			res->reject_status = ev->status;
			snprintf(res->detail, sizeof(res->detail), "%s: %s (status %d)", step,
				 rdma_event_str(ev->event), ev->status);
			rdma_ack_cm_event(ev);
			return;
		}
		rdma_ack_cm_event(ev);
		if (want == RDMA_CM_EVENT_ROUTE_RESOLVED)
			break;
		want = RDMA_CM_EVENT_ROUTE_RESOLVED;
	}

	setup_verbs(o);

	build_priv(o, priv);
	memset(&param, 0, sizeof(param));
	param.private_data = o->priv_len ? priv : NULL;
	param.private_data_len = (uint8_t)o->priv_len;
	param.responder_resources = 1;
	param.initiator_depth = 1;
	param.retry_count = 7;
	param.rnr_retry_count = 7;
	if (rdma_connect(C.id, &param)) {
		res->result = "unreachable";
		snprintf(res->detail, sizeof(res->detail), "rdma_connect: %s", strerror(errno));
		return;
	}
	ev = wait_cm_event(deadline_in(CONNECT_MS));
	if (!ev) {
		res->result = "timeout";
		snprintf(res->detail, sizeof(res->detail), "no answer to the connect request");
		return;
	}
	res->event = rdma_event_str(ev->event);
	switch (ev->event) {
	case RDMA_CM_EVENT_ESTABLISHED:
		res->result = "established";
		C.established = true;
		break;
	case RDMA_CM_EVENT_REJECTED: {
		const uint8_t *p = ev->param.conn.private_data;
		int n = ev->param.conn.private_data_len;

		res->result = "rejected";
		res->reject_status = ev->status;
		if (p && n >= 6 && get_le32(p) == CM_MAGIC)
			res->reject_reason = p[5];
		snprintf(res->detail, sizeof(res->detail),
			 "rejected with CM status %d, %d bytes of private data%s", ev->status, n,
			 res->reject_reason < 0 ? " (not an ssi reject)" : "");
		break;
	}
	default:
		/* UNREACHABLE, CONNECT_ERROR, DEVICE_REMOVAL... */
		res->result = "unreachable";
		res->reject_status = ev->status;
		snprintf(res->detail, sizeof(res->detail), "%s (status %d)",
			 rdma_event_str(ev->event), ev->status);
		break;
	}
	rdma_ack_cm_event(ev);
}

/* ---- Sending ------------------------------------------------------------------------ */

static bool send_completed(void *arg)
{
	return C.wr_done >= *(uint64_t *)arg || C.disconnected;
}

/*
 * Sends the first `len` bytes of C.send_buf and waits for the send completion.
 * Returns "ok", "timeout", "disconnected", "post_failed" or the completion's error.
 */
static const char *send_wait(size_t len, int wait_ms)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)C.send_buf,
		.length = (uint32_t)len,
		.lkey = C.send_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = ++C.next_wr,
		.sg_list = len ? &sge : NULL,
		.num_sge = len ? 1 : 0,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;
	uint64_t id = wr.wr_id;

	if (ibv_post_send(C.id->qp, &wr, &bad)) {
		warnx_("ibv_post_send: %s", strerror(errno));
		return "post_failed";
	}
	if (!pump(deadline_in(wait_ms), send_completed, &id))
		return "timeout";
	if (C.wr_done < id)
		return "disconnected";
	return C.wr_status == IBV_WC_SUCCESS ? "ok" : ibv_wc_status_str(C.wr_status);
}

static bool seq_answered(void *arg)
{
	return C.answered[*(uint32_t *)arg] || C.disconnected;
}

/*
 * Sends a valid Ping with `seq` and waits for its answer; returns the RTT in us (0 for
 * another seq than PING_SEQ) or -1 if no Ping answer came (`*st` says why: the send's
 * status, "no_answer", or "answered_with_type_N").
 */
static double valid_ping(const struct opts *o, uint32_t seq, int wait_ms, const char **st)
{
	static char other[2][32];
	uint64_t t0;
	size_t n = ping_frame(C.send_buf, o->node, (uint16_t)o->target_node, seq, "hostile");

	t0 = now_us();
	*st = send_wait(n, wait_ms);
	if (strcmp(*st, "ok"))
		return -1;
	pump(deadline_in(wait_ms), seq_answered, &seq);
	if (!C.answered[seq]) {
		*st = "no_answer";
		return -1;
	}
	if (C.answered[seq] != MSG_PING) {
		char *buf = other[seq == PING_SEQ];

		snprintf(buf, sizeof(other[0]), "answered_with_type_%u", C.answered[seq]);
		*st = buf;
		return -1;
	}
	return seq == PING_SEQ ? (double)(C.ping_answer_us - t0) : 0;
}

/* The malformed frames, built into C.send_buf: returns the length. */
static const char *const garbage_names[] = {
	"random64",	    "short10",	       "bad_magic",	    "bad_version",
	"unknown_type",	    "unknown_flag",    "reserved_nonzero", "truncated_payload",
	"trailing_bytes",   "spoofed_src",     "wrong_dst",	    "ping_blob_too_long",
	"error_errno_zero", "empty_send",
};
#define NGARBAGE (sizeof(garbage_names) / sizeof(garbage_names[0]))

static size_t garbage_frame(const struct opts *o, unsigned i, uint8_t *b)
{
	uint16_t me = o->node, tgt = (uint16_t)o->target_node;
	uint32_t seq = GARBAGE_SEQ + i;
	uint64_t x = 0x9e3779b97f4a7c15ull; /* deterministic "random" bytes */
	size_t n, k;

	switch (i) {
	case 0: /* random64 */
		for (k = 0; k < 64; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[k] = (uint8_t)x;
		}
		if (get_le32(b) == WIRE_MAGIC)
			b[0] ^= 0xff;
		return 64;
	case 1: /* short10: less than a header */
		n = ping_frame(b, me, tgt, seq, "x");
		(void)n;
		return 10;
	case 2: /* bad_magic */
		n = ping_frame(b, me, tgt, seq, "x");
		put_le32(b, 0xdeadbeef);
		return n;
	case 3: /* bad_version */
		n = ping_frame(b, me, tgt, seq, "x");
		b[4] = 9;
		return n;
	case 4: /* unknown_type */
		n = ping_frame(b, me, tgt, seq, "x");
		b[5] = 77;
		return n;
	case 5: /* unknown_flag */
		n = ping_frame(b, me, tgt, seq, "x");
		put_le16(b + 6, 0x8000);
		return n;
	case 6: /* reserved_nonzero */
		n = ping_frame(b, me, tgt, seq, "x");
		put_le32(b + 20, 1);
		return n;
	case 7: /* truncated_payload: the header says 100, 20 follow */
		put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_PING, 0, me, tgt, seq, 100, 0);
		put_le16(b + HEADER_LEN, 98);
		memset(b + HEADER_LEN + 2, 'y', 18);
		return HEADER_LEN + 20;
	case 8: /* trailing_bytes: the header says 4, 8 follow */
		put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_PING, 0, me, tgt, seq, 4, 0);
		put_le16(b + HEADER_LEN, 2);
		memcpy(b + HEADER_LEN + 2, "ab", 2);
		memset(b + HEADER_LEN + 4, 'z', 4);
		return HEADER_LEN + 8;
	case 9: /* spoofed_src: a valid Ping claiming to come from another node */
		return ping_frame(b, (uint16_t)(me + 1), tgt, seq, "spoofed");
	case 10: /* wrong_dst: a valid Ping for another node */
		return ping_frame(b, me, tgt == 63 ? 62 : 63, seq, "misrouted");
	case 11: /* ping_blob_too_long: a blob of MAX_PING + 1 bytes */
		put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_PING, 0, me, tgt, seq,
			   2 + MAX_PING + 1, 0);
		put_le16(b + HEADER_LEN, MAX_PING + 1);
		memset(b + HEADER_LEN + 2, 'p', MAX_PING + 1);
		return HEADER_LEN + 2 + MAX_PING + 1;
	case 12: /* error_errno_zero: an Error answer with errno 0 */
		put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_ERROR, FLAG_RESPONSE, me, tgt, seq,
			   4, 0);
		put_le32(b + HEADER_LEN, 0);
		return HEADER_LEN + 4;
	default: /* empty_send */
		return 0;
	}
}

static size_t hello_frame(const struct opts *o, uint8_t *b)
{
	size_t n = put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_HELLO, 0, o->node,
			      (uint16_t)o->target_node, 1, 8, 0);

	put_le32(b + n, o->abi);
	put_le32(b + n + 4, o->incarnation);
	return n + 8;
}

static size_t oversized_frame(const struct opts *o, uint8_t *b)
{
	memset(b, 0, OVERSIZED_LEN);
	put_header(b, WIRE_MAGIC, WIRE_VERSION, MSG_PING, 0, o->node, (uint16_t)o->target_node,
		   GARBAGE_SEQ + NGARBAGE, OVERSIZED_LEN - HEADER_LEN, 0);
	return OVERSIZED_LEN;
}

static void dump_one(const char *name, const uint8_t *b, size_t n)
{
	size_t k;

	printf("%s ", name);
	for (k = 0; k < n; k++)
		printf("%02x", b[k]);
	printf("%s\n", n ? "" : "-");
}

/* --dump-frames: every frame of garbage mode, for offline checks against the decoder. */
static void dump_frames(const struct opts *o)
{
	static uint8_t b[SEND_LEN];
	unsigned i;

	dump_one("hello", b, hello_frame(o, b));
	dump_one("valid_ping", b, ping_frame(b, o->node, (uint16_t)o->target_node, PING_SEQ,
					     "hostile"));
	for (i = 0; i < NGARBAGE; i++)
		dump_one(garbage_names[i], b, garbage_frame(o, i, b));
	dump_one("oversized", b, oversized_frame(o, b));
}

static bool never(void *arg)
{
	(void)arg;
	return C.disconnected;
}

static bool oversized_done(void *arg)
{
	uint64_t id = *(uint64_t *)arg;

	return C.disconnected || (C.wr_done >= id && C.wr_status != IBV_WC_SUCCESS);
}

static void print_types(void)
{
	bool first = true;
	int t;

	putchar('[');
	for (t = 0; t < 32; t++)
		if (C.types_seen & (1u << t)) {
			printf("%s%d", first ? "" : ",", t);
			first = false;
		}
	putchar(']');
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_connect_fields(const struct connect_result *r)
{
	printf("\"result\":\"%s\",\"reject_reason\":", r->result);
	if (r->reject_reason >= 0)
		printf("%d", r->reject_reason);
	else
		printf("null");
	printf(",\"cm_status\":");
	if (r->reject_status != -1)
		printf("%d", r->reject_status);
	else
		printf("null");
	printf(",\"detail\":");
	json_str(r->detail);
}

static void run_garbage(const struct opts *o, const struct connect_result *cr)
{
	const char *status[NGARBAGE], *ping_st = "not_sent", *after_st = "not_sent";
	const char *hello_st = "not_sent", *over_st = "not_sent";
	double rtt = -1;
	int sent = 0, failed = 0, answered = 0;
	bool after_ok = false, over_disc = false, stalled = false;
	unsigned i;

	for (i = 0; i < NGARBAGE; i++)
		status[i] = "not_sent";

	if (C.established) {
		if (o->hello)
			hello_st = send_wait(hello_frame(o, C.send_buf), SEND_WAIT_MS);
		rtt = valid_ping(o, PING_SEQ, PING_WAIT_MS, &ping_st);

		for (i = 0; i < NGARBAGE && !C.disconnected && !stalled; i++) {
			size_t n = garbage_frame(o, i, C.send_buf);

			status[i] = send_wait(n, SEND_WAIT_MS);
			if (!strcmp(status[i], "ok")) {
				sent++;
			} else {
				failed++;
				/* A send that never completes: the link is stuck, stop here. */
				stalled = !strcmp(status[i], "timeout");
			}
		}

		/* Does the link still carry traffic after the garbage? */
		if (!C.disconnected && !C.qp_error && !stalled)
			after_ok = valid_ping(o, PING_AFTER_SEQ, 2000, &after_st) >= 0;

		for (i = 0; i < NGARBAGE; i++)
			answered += C.answered[GARBAGE_SEQ + i] != 0;

		if (o->oversized && !C.disconnected && !C.qp_error) {
			struct ibv_sge sge;
			struct ibv_send_wr wr, *bad;
			uint64_t id;

			sge = (struct ibv_sge){ .addr = (uintptr_t)C.send_buf,
						.length = (uint32_t)oversized_frame(o, C.send_buf),
						.lkey = C.send_mr->lkey };
			wr = (struct ibv_send_wr){ .wr_id = ++C.next_wr,
						   .sg_list = &sge,
						   .num_sge = 1,
						   .opcode = IBV_WR_SEND,
						   .send_flags = IBV_SEND_SIGNALED };
			id = wr.wr_id;
			if (ibv_post_send(C.id->qp, &wr, &bad)) {
				warnx_("ibv_post_send (oversized): %s", strerror(errno));
				over_st = "post_failed";
			} else {
				over_disc = pump(deadline_in(OVERSIZED_WAIT_MS), oversized_done,
						 &id);
				over_st = C.wr_done >= id ? ibv_wc_status_str(C.wr_status)
							  : "no_completion";
			}
		} else if (o->oversized) {
			over_st = "link_already_down";
			over_disc = true;
		}
	}

	printf("{\"mode\":\"garbage\",");
	print_connect_fields(cr);
	printf(",\"node\":%u,\"target_node\":%d", o->node, o->target_node);
	printf(",\"hello\":\"%s\"", hello_st);
	printf(",\"valid_ping\":\"%s\",\"valid_ping_answered\":%s", ping_st,
	       rtt >= 0 ? "true" : "false");
	if (rtt >= 0)
		printf(",\"ping_rtt_us\":%.0f,\"ping_echo_ok\":%s", rtt,
		       C.ping_echo_ok ? "true" : "false");
	else
		printf(",\"ping_rtt_us\":null,\"ping_echo_ok\":null");
	printf(",\"malformed_sent\":%d,\"malformed_failed\":%d,\"stalled\":%s", sent, failed,
	       stalled ? "true" : "false");
	printf(",\"frames\":{");
	for (i = 0; i < NGARBAGE; i++)
		printf("%s\"%s\":\"%s\"", i ? "," : "", garbage_names[i], status[i]);
	printf("},\"garbage_answered\":%d", answered);
	printf(",\"valid_ping_after\":\"%s\",\"valid_ping_after_answered\":%s", after_st,
	       after_ok ? "true" : "false");
	printf(",\"frames_received\":%d,\"bad_frames_received\":%d,\"types_received\":",
	       C.frames_received, C.bad_frames_received);
	print_types();
	printf(",\"oversized\":%s", o->oversized ? "true" : "false");
	if (o->oversized)
		printf(",\"oversized_send\":\"%s\",\"disconnected\":%s", over_st,
		       over_disc ? "true" : "false");
	else
		printf(",\"disconnected\":%s", C.disconnected ? "true" : "false");
	printf(",\"send_errors\":%d}\n", C.send_errors);
}

static void run_connect(const struct opts *o, const struct connect_result *cr)
{
	bool closed = false;

	/* An accepted connection the server drops at once is worth knowing about. */
	if (C.established) {
		pump(deadline_in(500), never, NULL);
		closed = C.disconnected;
	}
	printf("{\"mode\":\"connect\",");
	print_connect_fields(cr);
	printf(",\"node\":%u,\"abi\":%u,\"priv_len\":%d,\"incarnation\":%u", o->node, o->abi,
	       o->priv_len, o->incarnation);
	if (C.established)
		printf(",\"peer_closed\":%s", closed ? "true" : "false");
	else
		printf(",\"peer_closed\":null");
	printf("}\n");
}

static void teardown(void)
{
	if (C.established && !C.disconnected) {
		if (!rdma_disconnect(C.id))
			pump(deadline_in(1000), never, NULL);
	}
	if (C.qp)
		rdma_destroy_qp(C.id);
	if (C.send_mr)
		ibv_dereg_mr(C.send_mr);
	if (C.recv_mr)
		ibv_dereg_mr(C.recv_mr);
	if (C.cq)
		ibv_destroy_cq(C.cq);
	if (C.ch)
		ibv_destroy_comp_channel(C.ch);
	if (C.pd)
		ibv_dealloc_pd(C.pd);
	if (C.id)
		rdma_destroy_id(C.id);
	if (C.ec)
		rdma_destroy_event_channel(C.ec);
	free(C.send_buf);
	free(C.recv_buf);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct connect_result cr;

	start_ms = now_ms();
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(OVERALL_ALARM_S);

	parse_opts(argc, argv, &o);
	if (o.dump_frames) {
		dump_frames(&o);
		return 0;
	}
	connect_to(&o, &cr);
	if (!C.established && cr.detail[0])
		warnx_("%s", cr.detail);
	if (!strcmp(o.mode, "garbage"))
		run_garbage(&o, &cr);
	else
		run_connect(&o, &cr);
	fflush(stdout);
	teardown();
	return 0;
}
