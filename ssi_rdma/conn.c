// SPDX-License-Identifier: GPL-2.0
/*
 * ssi_rdma's connection engine over the RDMA CM and verbs: one reliable-connected QP
 * per peer node, a ring of pre-posted RECV buffers for control frames, SENDs, and
 * one-sided RDMA READs of pages that a peer exposed with fast-registration MRs.
 *
 * The verbs API is macros and static inlines, so this part is C; main.rs (Rust) drives
 * it through the functions declared in conn.h and gets links and frames back through
 * ssi_rdma_upcall_link() and ssi_rdma_upcall_deliver(). The decisions are not made
 * here: at each one this file asks the policy of rust/src/rdma_conn.rs (through
 * policy.rs, the "Policy" section of conn.h) with the state it keeps for it
 * (struct ssi_conn_fsm, struct ssi_peer_fsm) and does what the answer says. This file
 * keeps the CM and verbs calls, the locks, the work items and the memory.
 *
 * Shape (after net/9p/trans_rdma.c and drivers/nvme/target/rdma.c):
 * - Roles (policy): of two nodes, the one with the higher id connects; the other
 *   accepts. The CM private data carries magic, protocol, node id, ABI version and
 *   incarnation; a request from an unconfigured node, from another address than the
 *   configured one, with another ABI or malformed is rejected, and the reason goes
 *   back in the reject. The policy encodes and checks the private data and words the
 *   log lines; this file formats the requester's address (%pISc) for them.
 * - Each connection owns its PD, CQ (IB_POLL_WORKQUEUE: completions run in process
 *   context; never busy-polling, which starves the vCPU that runs rxe under TCG) and QP.
 * - Every failure (CM error or disconnect, a completion error, a stuck read, core
 *   resetting the link) funnels into ssi_conn_fail(), which queues the one teardown
 *   of that connection on ssi_wq (the policy says whether it is the first); the active
 *   side then retries after the policy's delay (500 ms), the passive side waits.
 * - The peer table has ssi_rdma_max_nodes() entries: SSI_MAX_NODES of rust/src/node.rs.
 * - Locks: peer->link_lock (mutex) orders each peer's link up/down decisions and
 *   upcalls; ssi_peers_lock (spinlock) guards the peer table and each peer's
 *   ssi_peer_fsm; conn->lock (spinlock) guards the connection's ssi_conn_fsm and every
 *   post, so nothing is posted once teardown has started; conn->mr_lock (mutex) guards
 *   the exposed MRs. Order: link_lock, then ssi_peers_lock, then conn->lock. The policy
 *   is called under these spinlocks: it neither sleeps nor allocates. Upcalls into
 *   Rust/core hold only link_lock: core calls back into us (send, reset) from them, and
 *   those take neither link_lock nor wait for a teardown.
 */
#include <linux/inet.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <rdma/ib_cm.h>
#include <rdma/rdma_cm.h>
#include <rdma/ib_verbs.h>

#include "conn.h"

#define SSI_RX_DEPTH 32
#define SSI_SQ_DEPTH 128
/* Keep room for the drain WR of ib_drain_qp() and the odd REG_MR/LOCAL_INV. */
#define SSI_SQ_LIMIT (SSI_SQ_DEPTH - 8)
#define SSI_RESOLVE_MS 1000
/* A log line of the policy (a refused or rejected connection request). */
#define SSI_WHY_LEN 160
/* A peer's address as %pISc prints it (IPv6 at most). */
#define SSI_ADDR_LEN 48

/* The Rust types of the policy have the same layouts (rust/src/rdma_conn.rs). */
static_assert(sizeof(struct ssi_local) == 12);
static_assert(sizeof(struct ssi_conn_fsm) == 3);
static_assert(sizeof(struct ssi_peer_fsm) == 8);
static_assert(sizeof(struct ssi_peer_facts) == 8);
static_assert(sizeof(struct ssi_action) == 8);

struct ssi_conn;

struct ssi_rx {
	struct ib_cqe cqe;
	struct ssi_conn *conn;
	u64 dma;
	u8 *buf;
};

struct ssi_tx {
	struct ib_cqe cqe;
	struct ssi_conn *conn;
	u64 dma;
	u32 len;
	u8 buf[];
};

/* A work request someone waits for: RDMA READ, REG_MR, LOCAL_INV. */
struct ssi_wait {
	struct ib_cqe cqe;
	struct ssi_conn *conn;
	struct completion done;
	int status;
	refcount_t ref;
	/* For reads: the local page, mapped while the READ is outstanding. */
	struct page *page;
	u64 dma;
	u32 len;
};

/* A page exposed to the peer. */
struct ssi_mr {
	/* Separate completions: a revocation can be posted before the registration's
	 * completion has been polled. */
	struct ib_cqe reg_cqe;
	struct ib_cqe inv_cqe;
	struct ssi_conn *conn;
	struct list_head node;
	u64 cookie;
	struct ib_mr *mr;
	struct page *page;
	struct scatterlist sg;
	bool mapped;
};

struct ssi_conn {
	struct kref ref;
	u32 peer;
	bool active;
	struct rdma_cm_id *cm_id;
	struct ib_device *dev;
	struct ib_pd *pd;
	struct ib_cq *cq;
	struct ib_qp *qp;
	/*
	 * Guards the verbs resources (pd, cq, qp, rx ring, mrs list) against being freed
	 * under their users: creation and teardown hold it for writing; users hold it for
	 * reading with down_read_trylock() only, so that a sender running in this link's
	 * own completion work never sleeps on a teardown that is draining that work (they
	 * get -ENOTCONN instead).
	 */
	struct rw_semaphore res_sem;
	spinlock_t lock;
	/* State, announced, teardown queued: changed only by the policy, under lock. */
	struct ssi_conn_fsm fsm;
	int sq_used;
	struct ssi_rx rx[SSI_RX_DEPTH];
	struct mutex mr_lock;
	struct list_head mrs;
	struct work_struct teardown;
};

struct ssi_peer {
	u32 node;
	/* Wanted by core, failures: changed only by the policy, under ssi_peers_lock. */
	struct ssi_peer_fsm fsm;
	__be32 ip;
	u16 port;
	struct ssi_conn *conn;
	/* The connection that last reported the link up (only it may report it down). */
	struct ssi_conn *announced;
	/* Serialises link up/down decisions and their upcalls, so core sees them in order. */
	struct mutex link_lock;
	struct delayed_work retry;
};

/* Indexed by node id; ssi_rdma_max_nodes() entries (SSI_MAX_NODES of rust/src/node.rs). */
static struct ssi_peer *ssi_peers;
static u32 ssi_max_nodes;
static DEFINE_SPINLOCK(ssi_peers_lock);
static struct workqueue_struct *ssi_wq;
static struct rdma_cm_id *ssi_listener;
static struct ssi_local ssi_local;
static u16 ssi_port;
static bool ssi_stopping;
static atomic64_t ssi_cookie_seq;
static struct {
	atomic64_t rx_frames, tx_frames, rx_errors, rejected, connect_attempts, reads, exposed;
} ssi_counters;

#define ssi_stat_inc(field) atomic64_inc(&ssi_counters.field)

static void ssi_conn_release(struct kref *ref)
{
	kfree(container_of(ref, struct ssi_conn, ref));
}

static void ssi_conn_put(struct ssi_conn *conn)
{
	kref_put(&conn->ref, ssi_conn_release);
}

/* What the policy needs to know about p besides p->fsm. Under ssi_peers_lock. */
static struct ssi_peer_facts ssi_peer_facts(struct ssi_peer *p)
{
	return (struct ssi_peer_facts){
		.node = p->node,
		.stopping = ssi_stopping,
		.has_conn = p->conn != NULL,
	};
}

/* Does what the policy decided for p: (re)arms its connection attempt. Under ssi_peers_lock. */
static void ssi_peer_act(struct ssi_peer *p, struct ssi_action act)
{
	if (act.kind == SSI_ACT_CONNECT)
		mod_delayed_work(ssi_wq, &p->retry, msecs_to_jiffies(act.delay_ms));
}

/* Whether the link of conn was reported up (frames flow only then). Not under conn->lock. */
static bool ssi_conn_announced(struct ssi_conn *conn)
{
	bool announced;

	spin_lock(&conn->lock);
	announced = ssi_rdma_conn_announced(&conn->fsm);
	spin_unlock(&conn->lock);
	return announced;
}

/* Queues the (single) teardown of a connection. Process context, not under conn->lock. */
static void ssi_conn_fail(struct ssi_conn *conn)
{
	struct ssi_action act;

	spin_lock(&conn->lock);
	act = ssi_rdma_conn_fail(&conn->fsm);
	spin_unlock(&conn->lock);
	if (act.kind == SSI_ACT_QUEUE_TEARDOWN)
		queue_work(ssi_wq, &conn->teardown);
}

/*
 * Reports the link up once, before any frame of it is delivered; returns whether it is
 * (not if the connection is already closing). Process context.
 */
static bool ssi_conn_announce(struct ssi_conn *conn)
{
	struct ssi_peer *p = &ssi_peers[conn->peer];
	struct ssi_action act;
	bool announced;

	mutex_lock(&p->link_lock);
	spin_lock(&conn->lock);
	act = ssi_rdma_conn_established(&conn->fsm);
	announced = ssi_rdma_conn_announced(&conn->fsm);
	spin_unlock(&conn->lock);
	if (act.kind == SSI_ACT_ANNOUNCE_UP) {
		spin_lock(&ssi_peers_lock);
		p->announced = conn;
		spin_unlock(&ssi_peers_lock);
		pr_info("ssi_rdma: link to node %u up (%s)\n", conn->peer,
			conn->active ? "connected" : "accepted");
		ssi_rdma_upcall_link(conn->peer, true);
	}
	mutex_unlock(&p->link_lock);
	return announced;
}

/* The live connection to a node, referenced; NULL if there is none. */
static struct ssi_conn *ssi_conn_get(u32 node)
{
	struct ssi_conn *conn = NULL;

	if (node >= ssi_max_nodes)
		return NULL;
	spin_lock(&ssi_peers_lock);
	if (ssi_peers[node].conn) {
		conn = ssi_peers[node].conn;
		kref_get(&conn->ref);
	}
	spin_unlock(&ssi_peers_lock);
	return conn;
}

/*
 * The announced connection to `node`, referenced and with its resources pinned (its
 * res_sem held for reading), or NULL. Never sleeps on a teardown. Undo with
 * ssi_conn_unuse().
 */
static struct ssi_conn *ssi_conn_use(u32 node)
{
	struct ssi_conn *conn = ssi_conn_get(node);

	if (!conn)
		return NULL;
	if (!ssi_conn_announced(conn) || !down_read_trylock(&conn->res_sem)) {
		ssi_conn_put(conn);
		return NULL;
	}
	if (!conn->qp) { /* torn down between the lookup and the trylock */
		up_read(&conn->res_sem);
		ssi_conn_put(conn);
		return NULL;
	}
	return conn;
}

static void ssi_conn_unuse(struct ssi_conn *conn)
{
	up_read(&conn->res_sem);
	ssi_conn_put(conn);
}

/* ---- completions ---------------------------------------------------------------- */

static int ssi_post_recv(struct ssi_conn *conn, struct ssi_rx *rx)
{
	struct ib_sge sge = {
		.addr = rx->dma,
		.length = SSI_RDMA_FRAME_MAX,
		.lkey = conn->pd->local_dma_lkey,
	};
	struct ib_recv_wr wr = {
		.wr_cqe = &rx->cqe,
		.sg_list = &sge,
		.num_sge = 1,
	};
	int ret = -ECONNRESET;

	spin_lock(&conn->lock);
	if (!ssi_rdma_conn_closing(&conn->fsm))
		ret = ib_post_recv(conn->qp, &wr, NULL);
	spin_unlock(&conn->lock);
	return ret;
}

static void ssi_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct ssi_rx *rx = container_of(wc->wr_cqe, struct ssi_rx, cqe);
	struct ssi_conn *conn = rx->conn;
	bool up;

	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		if (wc->status != IB_WC_WR_FLUSH_ERR) {
			ssi_stat_inc(rx_errors);
			pr_warn_ratelimited("ssi_rdma: node %u: receive failed (%s%s); dropping the link\n",
					    conn->peer, ib_wc_status_msg(wc->status),
					    wc->status == IB_WC_LOC_LEN_ERR ?
						    ": frame larger than the receive buffer" : "");
			ssi_conn_fail(conn);
		}
		return;
	}
	/*
	 * A frame can overtake the ESTABLISHED event on the accepting side. Once announced,
	 * a connection stays so: one look per frame.
	 */
	up = ssi_conn_announced(conn) || ssi_conn_announce(conn);
	ib_dma_sync_single_for_cpu(conn->dev, rx->dma, SSI_RDMA_FRAME_MAX, DMA_FROM_DEVICE);
	ssi_stat_inc(rx_frames);
	if (up)
		ssi_rdma_upcall_deliver(conn->peer, rx->buf, wc->byte_len);
	ib_dma_sync_single_for_device(conn->dev, rx->dma, SSI_RDMA_FRAME_MAX, DMA_FROM_DEVICE);
	/* Refused once the teardown runs, which was queued: failing again does nothing. */
	if (ssi_post_recv(conn, rx))
		ssi_conn_fail(conn);
}

static void ssi_send_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct ssi_tx *tx = container_of(wc->wr_cqe, struct ssi_tx, cqe);
	struct ssi_conn *conn = tx->conn;

	ib_dma_unmap_single(conn->dev, tx->dma, tx->len, DMA_TO_DEVICE);
	spin_lock(&conn->lock);
	conn->sq_used--;
	spin_unlock(&conn->lock);
	if (unlikely(wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR)) {
		pr_warn_ratelimited("ssi_rdma: node %u: send failed (%s); dropping the link\n",
				    conn->peer, ib_wc_status_msg(wc->status));
		ssi_conn_fail(conn);
	}
	kfree(tx);
}

static void ssi_wait_put(struct ssi_wait *w)
{
	if (refcount_dec_and_test(&w->ref)) {
		if (w->page)
			put_page(w->page);
		kfree(w);
	}
}

static int ssi_wc_errno(enum ib_wc_status s)
{
	switch (s) {
	case IB_WC_SUCCESS:
		return 0;
	case IB_WC_REM_ACCESS_ERR:
	case IB_WC_LOC_PROT_ERR:
		return -EACCES;
	case IB_WC_WR_FLUSH_ERR:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

static void ssi_wait_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct ssi_wait *w = container_of(wc->wr_cqe, struct ssi_wait, cqe);
	struct ssi_conn *conn = w->conn;

	if (w->dma)
		ib_dma_unmap_page(conn->dev, w->dma, w->len, DMA_FROM_DEVICE);
	spin_lock(&conn->lock);
	conn->sq_used--;
	spin_unlock(&conn->lock);
	w->status = ssi_wc_errno(wc->status);
	if (wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR) {
		pr_warn_ratelimited("ssi_rdma: node %u: RDMA %s failed (%s); dropping the link\n",
				    conn->peer, w->page ? "READ" : "registration",
				    ib_wc_status_msg(wc->status));
		ssi_conn_fail(conn);
	}
	complete(&w->done);
	ssi_wait_put(w);
}

/* Posts a send-queue WR under the connection lock, if the link is up and has room. */
static int ssi_post_send(struct ssi_conn *conn, const struct ib_send_wr *wr)
{
	int ret;

	spin_lock(&conn->lock);
	if (!ssi_rdma_conn_may_send(&conn->fsm)) {
		ret = -ENOTCONN;
	} else if (conn->sq_used >= SSI_SQ_LIMIT) {
		ret = -ENOBUFS;
	} else {
		ret = ib_post_send(conn->qp, wr, NULL);
		if (!ret)
			conn->sq_used++;
	}
	spin_unlock(&conn->lock);
	return ret;
}

/*
 * Posts a WR that completes into `w` and waits for it (at most timeout_ms). Called with
 * conn->res_sem held for reading (ssi_conn_use()); releases it before waiting, so a
 * teardown can drain the WR meanwhile.
 */
static int ssi_post_wait(struct ssi_conn *conn, struct ssi_wait *w, struct ib_send_wr *wr,
			 u32 timeout_ms)
{
	int ret;

	w->cqe.done = ssi_wait_done;
	w->conn = conn;
	init_completion(&w->done);
	refcount_set(&w->ref, 2);
	wr->wr_cqe = &w->cqe;
	wr->send_flags = IB_SEND_SIGNALED;
	ret = ssi_post_send(conn, wr);
	if (ret) {
		if (w->dma)
			ib_dma_unmap_page(conn->dev, w->dma, w->len, DMA_FROM_DEVICE);
		up_read(&conn->res_sem);
		refcount_set(&w->ref, 1);
		ssi_wait_put(w);
		return ret;
	}
	up_read(&conn->res_sem);
	if (!wait_for_completion_timeout(&w->done, msecs_to_jiffies(timeout_ms))) {
		/* The QP is stuck: reset the link; the drain completes `w`. */
		pr_warn_ratelimited("ssi_rdma: node %u: no completion after %u ms; dropping the link\n",
				    conn->peer, timeout_ms);
		ssi_conn_fail(conn);
		ret = -ETIMEDOUT;
	} else {
		ret = w->status;
	}
	ssi_wait_put(w);
	return ret;
}

/* ---- connection setup and teardown ----------------------------------------------- */

static struct ssi_conn *ssi_conn_alloc(u32 peer, bool active)
{
	struct ssi_conn *conn = kzalloc(sizeof(*conn), GFP_KERNEL);

	if (!conn)
		return NULL;
	kref_init(&conn->ref);
	conn->peer = peer;
	conn->active = active;
	init_rwsem(&conn->res_sem);
	spin_lock_init(&conn->lock);
	mutex_init(&conn->mr_lock);
	INIT_LIST_HEAD(&conn->mrs);
	conn->fsm = ssi_rdma_conn_new();
	return conn;
}

static void ssi_free_rx(struct ssi_conn *conn)
{
	int i;

	for (i = 0; i < SSI_RX_DEPTH; i++) {
		struct ssi_rx *rx = &conn->rx[i];

		if (!rx->buf)
			continue;
		if (rx->dma)
			ib_dma_unmap_single(conn->dev, rx->dma, SSI_RDMA_FRAME_MAX,
					    DMA_FROM_DEVICE);
		kfree(rx->buf);
		rx->buf = NULL;
		rx->dma = 0;
	}
}

static void ssi_mr_free(struct ssi_conn *conn, struct ssi_mr *m)
{
	if (m->mr)
		ib_dereg_mr(m->mr);
	if (m->mapped)
		ib_dma_unmap_sg(conn->dev, &m->sg, 1, DMA_BIDIRECTIONAL);
	if (m->page)
		put_page(m->page);
	kfree(m);
}

/* Releases the verbs resources of a connection (not its cm_id). */
static void ssi_conn_free_resources(struct ssi_conn *conn)
{
	struct ssi_mr *m, *tmp;

	list_for_each_entry_safe(m, tmp, &conn->mrs, node) {
		list_del(&m->node);
		ssi_mr_free(conn, m);
	}
	if (conn->qp) {
		rdma_destroy_qp(conn->cm_id);
		conn->qp = NULL;
	}
	ssi_free_rx(conn);
	if (conn->cq) {
		ib_free_cq(conn->cq);
		conn->cq = NULL;
	}
	if (conn->pd) {
		ib_dealloc_pd(conn->pd);
		conn->pd = NULL;
	}
}

/* PD, CQ, QP and the posted RECV ring, on the device the cm_id is bound to. */
static int ssi_conn_create_resources(struct ssi_conn *conn)
{
	struct ib_qp_init_attr attr = {};
	int i, ret;

	conn->dev = conn->cm_id->device;
	conn->pd = ib_alloc_pd(conn->dev, 0);
	if (IS_ERR(conn->pd)) {
		ret = PTR_ERR(conn->pd);
		conn->pd = NULL;
		return ret;
	}
	conn->cq = ib_alloc_cq_any(conn->dev, conn, SSI_SQ_DEPTH + SSI_RX_DEPTH + 2,
				   IB_POLL_WORKQUEUE);
	if (IS_ERR(conn->cq)) {
		ret = PTR_ERR(conn->cq);
		conn->cq = NULL;
		return ret;
	}
	attr.send_cq = conn->cq;
	attr.recv_cq = conn->cq;
	attr.qp_type = IB_QPT_RC;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.cap.max_send_wr = SSI_SQ_DEPTH;
	attr.cap.max_recv_wr = SSI_RX_DEPTH + 1;
	attr.cap.max_send_sge = 1;
	attr.cap.max_recv_sge = 1;
	attr.qp_context = conn;
	ret = rdma_create_qp(conn->cm_id, conn->pd, &attr);
	if (ret)
		return ret;
	conn->qp = conn->cm_id->qp;
	for (i = 0; i < SSI_RX_DEPTH; i++) {
		struct ssi_rx *rx = &conn->rx[i];

		rx->buf = kmalloc(SSI_RDMA_FRAME_MAX, GFP_KERNEL);
		if (!rx->buf)
			return -ENOMEM;
		rx->dma = ib_dma_map_single(conn->dev, rx->buf, SSI_RDMA_FRAME_MAX,
					    DMA_FROM_DEVICE);
		if (ib_dma_mapping_error(conn->dev, rx->dma)) {
			rx->dma = 0;
			return -EIO;
		}
		rx->conn = conn;
		rx->cqe.done = ssi_recv_done;
		ret = ssi_post_recv(conn, rx);
		if (ret)
			return ret;
	}
	return 0;
}

static void ssi_fill_param(struct rdma_conn_param *param, u8 priv[SSI_CM_PRIV_LEN],
			   struct ib_device *dev)
{
	memset(param, 0, sizeof(*param));
	ssi_rdma_cm_priv(&ssi_local, SSI_REJ_NONE, priv);
	param->private_data = priv;
	param->private_data_len = SSI_CM_PRIV_LEN;
	param->responder_resources = min_t(int, dev->attrs.max_qp_rd_atom, 8);
	param->initiator_depth = min_t(int, dev->attrs.max_qp_init_rd_atom, 8);
	param->flow_control = 1;
	param->retry_count = 6;
	param->rnr_retry_count = 7;
}

static void ssi_conn_teardown_work(struct work_struct *work)
{
	struct ssi_conn *conn = container_of(work, struct ssi_conn, teardown);
	struct ssi_peer *p = &ssi_peers[conn->peer];
	struct ssi_action act;
	bool came_up, reported_up;

	/* Under link_lock: a concurrent announce finished before, or sees it closing. */
	mutex_lock(&p->link_lock);
	spin_lock(&conn->lock);
	ssi_rdma_conn_close(&conn->fsm);
	spin_unlock(&conn->lock);
	spin_lock(&ssi_peers_lock);
	if (p->conn == conn)
		p->conn = NULL;
	spin_unlock(&ssi_peers_lock);
	mutex_unlock(&p->link_lock);

	/* Waits for resource creation (CM handler) and for users inside a post. */
	down_write(&conn->res_sem);
	if (conn->qp) {
		rdma_disconnect(conn->cm_id);
		/*
		 * Flushes every outstanding WR: their completions free what they hold, and
		 * frames still queued are delivered before the link is reported down.
		 */
		ib_drain_qp(conn->qp);
	}
	mutex_lock(&conn->mr_lock);
	ssi_conn_free_resources(conn);
	mutex_unlock(&conn->mr_lock);
	up_write(&conn->res_sem);

	/*
	 * Only the connection that last reported the link up reports it down: a newer
	 * connection that replaced this one (the peer restarted) keeps the link.
	 */
	mutex_lock(&p->link_lock);
	spin_lock(&ssi_peers_lock);
	reported_up = p->announced == conn;
	if (reported_up)
		p->announced = NULL;
	spin_unlock(&ssi_peers_lock);
	spin_lock(&conn->lock);
	act = ssi_rdma_conn_closed(&conn->fsm, reported_up);
	came_up = ssi_rdma_conn_announced(&conn->fsm);
	spin_unlock(&conn->lock);
	if (act.kind == SSI_ACT_ANNOUNCE_DOWN) {
		pr_info("ssi_rdma: link to node %u down\n", conn->peer);
		ssi_rdma_upcall_link(conn->peer, false);
	} else if (act.kind == SSI_ACT_REPLACED_CLOSED) {
		pr_info("ssi_rdma: replaced link to node %u closed\n", conn->peer);
	}
	mutex_unlock(&p->link_lock);

	/* Waits for a running CM handler of this id; none runs after. */
	rdma_destroy_id(conn->cm_id);

	/* The side that made the connection tries again. */
	spin_lock(&ssi_peers_lock);
	ssi_peer_act(p, ssi_rdma_peer_closed(&p->fsm, &ssi_local, ssi_peer_facts(p), conn->active,
					     came_up));
	spin_unlock(&ssi_peers_lock);
	ssi_conn_put(conn);
}

static int ssi_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev);

/* Active side: starts a connection attempt to a wanted peer. */
static void ssi_connect_work(struct work_struct *work)
{
	struct ssi_peer *p = container_of(to_delayed_work(work), struct ssi_peer, retry);
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct ssi_conn *conn;
	struct rdma_cm_id *id;
	int ret;

	conn = ssi_conn_alloc(p->node, true);
	if (!conn)
		goto retry_later;
	id = rdma_create_id(&init_net, ssi_cm_handler, conn, RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id)) {
		kfree(conn);
		goto retry_later;
	}
	conn->cm_id = id;
	INIT_WORK(&conn->teardown, ssi_conn_teardown_work);

	spin_lock(&ssi_peers_lock);
	if (!ssi_rdma_peer_may_connect(&p->fsm, &ssi_local, ssi_peer_facts(p))) {
		spin_unlock(&ssi_peers_lock);
		rdma_destroy_id(id);
		kfree(conn);
		return;
	}
	p->conn = conn;
	dst.sin_addr.s_addr = p->ip;
	dst.sin_port = htons(p->port);
	spin_unlock(&ssi_peers_lock);

	ssi_stat_inc(connect_attempts);
	ret = rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, SSI_RESOLVE_MS);
	if (ret)
		ssi_conn_fail(conn);
	return;

retry_later:
	spin_lock(&ssi_peers_lock);
	ssi_peer_act(p, ssi_rdma_peer_attempt_failed(&p->fsm, &ssi_local, ssi_peer_facts(p)));
	spin_unlock(&ssi_peers_lock);
}

static void ssi_reject(struct rdma_cm_id *id, u8 reason)
{
	u8 priv[SSI_CM_PRIV_LEN];

	ssi_rdma_cm_priv(&ssi_local, reason, priv);
	ssi_stat_inc(rejected);
	rdma_reject(id, priv, sizeof(priv), IB_CM_REJ_CONSUMER_DEFINED);
}

/* Passive side: a connection request. Non-zero makes the CM destroy `id`. */
static int ssi_accept(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct sockaddr_in *src = (struct sockaddr_in *)&id->route.addr.dst_addr;
	struct rdma_conn_param param;
	u8 priv[SSI_CM_PRIV_LEN];
	char from[SSI_ADDR_LEN], why[SSI_WHY_LEN];
	struct ssi_conn *conn, *old;
	struct ssi_peer *p;
	u32 node = 0;
	u8 reason;
	int ret;

	/* The policy decides (in the order of its checks) and words the log line. */
	snprintf(from, sizeof(from), "%pISc", src);
	reason = ssi_rdma_check_request(&ssi_local, ev->param.conn.private_data,
					ev->param.conn.private_data_len, from, &node, why,
					sizeof(why));
	/* Accepted so far, node < ssi_rdma_max_nodes(): the size of the table. */
	p = reason == SSI_REJ_NONE ? &ssi_peers[node] : NULL;
	if (p) {
		spin_lock(&ssi_peers_lock);
		reason = ssi_rdma_check_peer(&p->fsm, ssi_peer_facts(p), src->sin_family == AF_INET,
					     src->sin_addr.s_addr, p->ip, from, why, sizeof(why));
		spin_unlock(&ssi_peers_lock);
	}
	if (reason != SSI_REJ_NONE) {
		pr_warn_ratelimited("ssi_rdma: %s\n", why);
		ssi_reject(id, reason);
		return -ECONNREFUSED;
	}

	conn = ssi_conn_alloc(node, false);
	if (!conn) {
		ssi_reject(id, SSI_REJ_NO_RESOURCES);
		return -ECONNREFUSED;
	}
	conn->cm_id = id;
	INIT_WORK(&conn->teardown, ssi_conn_teardown_work);
	ret = ssi_conn_create_resources(conn);
	if (ret)
		goto refuse;
	/*
	 * Installed before accepting: the peer may send as soon as it has our answer, and
	 * our first receive completion (which announces the link) can run before this
	 * handler returns; the link must then be findable for the hello we send back.
	 * A newer connection replaces an old one (the peer restarted or reconnected).
	 */
	spin_lock(&ssi_peers_lock);
	old = p->conn;
	p->conn = conn;
	spin_unlock(&ssi_peers_lock);
	if (old)
		ssi_conn_fail(old);
	ssi_fill_param(&param, priv, conn->dev);
	param.responder_resources = min_t(u8, param.responder_resources,
					  ev->param.conn.initiator_depth);
	param.initiator_depth = min_t(u8, param.initiator_depth,
				      ev->param.conn.responder_resources);
	id->context = conn;
	ret = rdma_accept(id, &param);
	if (ret) {
		/* Installed and maybe referenced already: the teardown owns it and its id. */
		pr_warn_ratelimited("ssi_rdma: cannot accept node %u: %d\n", node, ret);
		ssi_conn_fail(conn);
	}
	return 0;
refuse:
	pr_warn_ratelimited("ssi_rdma: cannot accept node %u: %d\n", node, ret);
	ssi_conn_free_resources(conn);
	kfree(conn);
	return -ECONNREFUSED;
}

static int ssi_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct ssi_conn *conn = id->context;
	struct rdma_conn_param param;
	u8 priv[SSI_CM_PRIV_LEN];
	int ret;

	if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST)
		return ssi_accept(id, ev);
	if (!conn)
		return 0; /* the listener's own events */

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		ret = rdma_resolve_route(id, SSI_RESOLVE_MS);
		if (ret)
			ssi_conn_fail(conn);
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		/* Not while (or after) a teardown frees the resources. */
		down_write(&conn->res_sem);
		spin_lock(&conn->lock);
		ret = ssi_rdma_conn_closing(&conn->fsm) ? -ECONNABORTED : 0;
		spin_unlock(&conn->lock);
		if (!ret)
			ret = ssi_conn_create_resources(conn);
		up_write(&conn->res_sem);
		if (!ret) {
			ssi_fill_param(&param, priv, conn->dev);
			ret = rdma_connect_locked(id, &param);
		}
		if (ret) {
			pr_warn_ratelimited("ssi_rdma: connecting to node %u failed: %d\n",
					    conn->peer, ret);
			ssi_conn_fail(conn);
		}
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		ssi_conn_announce(conn);
		break;
	case RDMA_CM_EVENT_REJECTED: {
		char why[SSI_WHY_LEN];
		const void *rej;
		u8 len = 0;

		rej = rdma_consumer_reject_data(id, ev, &len);
		if (ssi_rdma_rejection(&ssi_local, conn->peer, rej, len, why, sizeof(why)))
			pr_warn_ratelimited("ssi_rdma: %s\n", why);
		else
			pr_debug("ssi_rdma: node %u: %s\n", conn->peer,
				 rdma_reject_msg(id, ev->status));
		ssi_conn_fail(conn);
		break;
	}
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
	case RDMA_CM_EVENT_ADDR_CHANGE:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		ssi_conn_fail(conn);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- API for main.rs ------------------------------------------------------------ */

int ssi_rdma_conn_start(const struct ssi_local *local, u16 port)
{
	u32 i;

	ssi_local = *local;
	ssi_port = port;
	ssi_stopping = false;
	ssi_max_nodes = ssi_rdma_max_nodes();
	ssi_peers = kcalloc(ssi_max_nodes, sizeof(*ssi_peers), GFP_KERNEL);
	if (!ssi_peers)
		return -ENOMEM;
	for (i = 0; i < ssi_max_nodes; i++) {
		ssi_peers[i] = (struct ssi_peer){ .node = i, .fsm = ssi_rdma_peer_new() };
		mutex_init(&ssi_peers[i].link_lock);
		INIT_DELAYED_WORK(&ssi_peers[i].retry, ssi_connect_work);
	}
	ssi_wq = alloc_workqueue("ssi_rdma", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!ssi_wq) {
		kfree(ssi_peers);
		ssi_peers = NULL;
		return -ENOMEM;
	}
	return 0;
}

int ssi_rdma_conn_listen(void)
{
	struct sockaddr_in any = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_ANY),
		.sin_port = htons(ssi_port),
	};
	struct rdma_cm_id *id;
	int ret;

	id = rdma_create_id(&init_net, ssi_cm_handler, NULL, RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id))
		return PTR_ERR(id);
	ret = rdma_set_reuseaddr(id, 1);
	if (!ret)
		ret = rdma_bind_addr(id, (struct sockaddr *)&any);
	if (!ret)
		ret = rdma_listen(id, 16);
	if (ret) {
		pr_err("ssi_rdma: cannot listen on port %u: %d\n", ssi_port, ret);
		rdma_destroy_id(id);
		return ret;
	}
	ssi_listener = id;
	return 0;
}

void ssi_rdma_conn_stop(void)
{
	u32 i;

	spin_lock(&ssi_peers_lock);
	ssi_stopping = true;
	spin_unlock(&ssi_peers_lock);
	/* No new passive connections once this returns. */
	if (ssi_listener) {
		rdma_destroy_id(ssi_listener);
		ssi_listener = NULL;
	}
	if (!ssi_wq)
		return;
	for (i = 0; i < ssi_max_nodes; i++)
		cancel_delayed_work_sync(&ssi_peers[i].retry);
	/*
	 * Stopping, no attempt starts and none is accepted any more: forget every peer and
	 * tear its connection down.
	 */
	for (i = 0; i < ssi_max_nodes; i++)
		ssi_rdma_conn_disconnect(i, true);
	/* Every teardown, including ones queued earlier, runs to completion. */
	destroy_workqueue(ssi_wq);
	ssi_wq = NULL;
	/* Every node id is out of range now: a late call finds no peer. */
	ssi_max_nodes = 0;
	kfree(ssi_peers);
	ssi_peers = NULL;
}

int ssi_rdma_conn_connect(u32 node, __be32 ip, u16 port)
{
	struct ssi_peer *p;

	if (node >= ssi_max_nodes || node == ssi_local.node)
		return -EINVAL;
	p = &ssi_peers[node];
	spin_lock(&ssi_peers_lock);
	p->ip = ip;
	p->port = port;
	ssi_peer_act(p, ssi_rdma_peer_connect(&p->fsm, &ssi_local, ssi_peer_facts(p)));
	spin_unlock(&ssi_peers_lock);
	return 0;
}

void ssi_rdma_conn_disconnect(u32 node, bool forget)
{
	struct ssi_conn *conn = NULL;
	struct ssi_peer *p;

	if (node >= ssi_max_nodes)
		return;
	p = &ssi_peers[node];
	spin_lock(&ssi_peers_lock);
	if (forget)
		ssi_rdma_peer_forget(&p->fsm);
	if (p->conn) {
		conn = p->conn;
		kref_get(&conn->ref);
	}
	spin_unlock(&ssi_peers_lock);
	if (conn) {
		ssi_conn_fail(conn);
		ssi_conn_put(conn);
	}
}

int ssi_rdma_conn_send(u32 node, const u8 *frame, size_t len)
{
	struct ssi_conn *conn;
	struct ssi_tx *tx;
	struct ib_sge sge;
	struct ib_send_wr wr = {};
	int ret;

	if (!len || len > SSI_RDMA_FRAME_MAX)
		return -EMSGSIZE;
	conn = ssi_conn_use(node);
	if (!conn)
		return -ENOTCONN;
	tx = kmalloc(struct_size(tx, buf, len), GFP_KERNEL);
	if (!tx) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(tx->buf, frame, len);
	tx->len = len;
	tx->conn = conn;
	tx->cqe.done = ssi_send_done;
	tx->dma = ib_dma_map_single(conn->dev, tx->buf, len, DMA_TO_DEVICE);
	if (ib_dma_mapping_error(conn->dev, tx->dma)) {
		kfree(tx);
		ret = -EIO;
		goto out;
	}
	sge = (struct ib_sge){ .addr = tx->dma, .length = len, .lkey = conn->pd->local_dma_lkey };
	wr.wr_cqe = &tx->cqe;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IB_WR_SEND;
	wr.send_flags = IB_SEND_SIGNALED;
	ret = ssi_post_send(conn, &wr);
	if (ret) {
		ib_dma_unmap_single(conn->dev, tx->dma, len, DMA_TO_DEVICE);
		kfree(tx);
	} else {
		ssi_stat_inc(tx_frames);
	}
out:
	ssi_conn_unuse(conn);
	return ret;
}

int ssi_rdma_conn_read(u32 node, u64 addr, u32 rkey, struct page *page, u32 len,
		       u32 timeout_ms)
{
	struct ssi_conn *conn;
	struct ssi_wait *w;
	struct ib_sge sge;
	struct ib_rdma_wr wr = {};
	int ret;

	if (!page || !len || len > PAGE_SIZE)
		return -EINVAL;
	conn = ssi_conn_use(node);
	if (!conn)
		return -ENOTCONN;
	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w) {
		ret = -ENOMEM;
		goto unuse;
	}
	get_page(page);
	w->page = page;
	w->len = len;
	w->dma = ib_dma_map_page(conn->dev, page, 0, len, DMA_FROM_DEVICE);
	if (ib_dma_mapping_error(conn->dev, w->dma)) {
		w->dma = 0;
		refcount_set(&w->ref, 1);
		ssi_wait_put(w);
		ret = -EIO;
		goto unuse;
	}
	sge = (struct ib_sge){ .addr = w->dma, .length = len, .lkey = conn->pd->local_dma_lkey };
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.wr.opcode = IB_WR_RDMA_READ;
	wr.remote_addr = addr;
	wr.rkey = rkey;
	/* Releases res_sem. */
	ret = ssi_post_wait(conn, w, &wr.wr, timeout_ms);
	if (!ret)
		ssi_stat_inc(reads);
	ssi_conn_put(conn);
	return ret;
unuse:
	ssi_conn_unuse(conn);
	return ret;
}

/* REG_MR completed: only failures matter (the link is then reset). */
static void ssi_reg_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct ssi_mr *m = container_of(wc->wr_cqe, struct ssi_mr, reg_cqe);
	struct ssi_conn *conn = m->conn;

	spin_lock(&conn->lock);
	conn->sq_used--;
	spin_unlock(&conn->lock);
	if (wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR) {
		pr_warn_ratelimited("ssi_rdma: node %u: page registration failed (%s); dropping the link\n",
				    conn->peer, ib_wc_status_msg(wc->status));
		ssi_conn_fail(conn);
	}
}

/* LOCAL_INV completed: the peer can no longer read the page; free the MR. */
static void ssi_inv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct ssi_mr *m = container_of(wc->wr_cqe, struct ssi_mr, inv_cqe);
	struct ssi_conn *conn = m->conn;

	spin_lock(&conn->lock);
	conn->sq_used--;
	spin_unlock(&conn->lock);
	if (wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR)
		ssi_conn_fail(conn);
	/* Success or flush: either way the QP no longer lets the peer in. */
	ssi_mr_free(conn, m);
}

/*
 * Registers `page` for RDMA READ by the peer. Does not wait: the REG_MR is posted
 * before whatever the caller sends next on this QP (the reply that carries the key),
 * and a send queue executes in order, so the registration is in place before the
 * peer can know the key.
 */
int ssi_rdma_conn_expose(u32 node, struct page *page, u64 *addr, u32 *rkey, u64 *cookie)
{
	struct ib_reg_wr wr = {};
	struct ssi_conn *conn;
	struct ssi_mr *m;
	int ret, n;

	if (!page)
		return -EINVAL;
	conn = ssi_conn_use(node);
	if (!conn)
		return -ENOTCONN;
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m) {
		ret = -ENOMEM;
		goto out;
	}
	m->conn = conn;
	get_page(page);
	m->page = page;
	m->mr = ib_alloc_mr(conn->pd, IB_MR_TYPE_MEM_REG, 1);
	if (IS_ERR(m->mr)) {
		ret = PTR_ERR(m->mr);
		m->mr = NULL;
		goto free_m;
	}
	sg_init_table(&m->sg, 1);
	sg_set_page(&m->sg, page, PAGE_SIZE, 0);
	if (ib_dma_map_sg(conn->dev, &m->sg, 1, DMA_BIDIRECTIONAL) != 1) {
		ret = -EIO;
		goto free_m;
	}
	m->mapped = true;
	n = ib_map_mr_sg(m->mr, &m->sg, 1, NULL, PAGE_SIZE);
	if (n != 1) {
		ret = n < 0 ? n : -EINVAL;
		goto free_m;
	}
	ib_update_fast_reg_key(m->mr, ib_inc_rkey(m->mr->rkey));
	m->reg_cqe.done = ssi_reg_done;
	m->inv_cqe.done = ssi_inv_done;
	m->cookie = atomic64_inc_return(&ssi_cookie_seq);
	wr.wr.opcode = IB_WR_REG_MR;
	wr.wr.wr_cqe = &m->reg_cqe;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.mr = m->mr;
	wr.key = m->mr->rkey;
	wr.access = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_READ;
	/* Listed before posting: the teardown frees it even if the link dies now. */
	mutex_lock(&conn->mr_lock);
	list_add_tail(&m->node, &conn->mrs);
	ret = ssi_post_send(conn, &wr.wr);
	if (ret)
		list_del(&m->node);
	mutex_unlock(&conn->mr_lock);
	if (ret)
		goto free_m;
	*addr = m->mr->iova;
	*rkey = m->mr->rkey;
	*cookie = m->cookie;
	ssi_stat_inc(exposed);
	goto out;
free_m:
	ssi_mr_free(conn, m);
out:
	ssi_conn_unuse(conn);
	return ret;
}

/* Revokes an exposure without waiting: the MR is freed when its LOCAL_INV completes. */
void ssi_rdma_conn_unexpose(u32 node, u64 cookie)
{
	struct ssi_conn *conn = ssi_conn_use(node);
	struct ib_send_wr wr = {};
	struct ssi_mr *m, *found = NULL;

	if (!conn)
		return; /* no live link: its teardown releases every exposure */
	mutex_lock(&conn->mr_lock);
	list_for_each_entry(m, &conn->mrs, node) {
		if (m->cookie == cookie) {
			found = m;
			break;
		}
	}
	if (found) {
		wr.opcode = IB_WR_LOCAL_INV;
		wr.wr_cqe = &found->inv_cqe;
		wr.send_flags = IB_SEND_SIGNALED;
		wr.ex.invalidate_rkey = found->mr->rkey;
		/*
		 * Unlisted before posting: the completion frees it. If it cannot be
		 * posted, it goes back for the teardown to free, and the link is dropped:
		 * a revocation must not be lost while the peer could still read.
		 */
		list_del(&found->node);
		if (ssi_post_send(conn, &wr)) {
			list_add_tail(&found->node, &conn->mrs);
			ssi_conn_fail(conn);
		}
	}
	mutex_unlock(&conn->mr_lock);
	ssi_conn_unuse(conn);
}

void ssi_rdma_conn_stats(struct ssi_rdma_stats *out)
{
	u32 i;

	out->rx_frames = atomic64_read(&ssi_counters.rx_frames);
	out->tx_frames = atomic64_read(&ssi_counters.tx_frames);
	out->rx_errors = atomic64_read(&ssi_counters.rx_errors);
	out->rejected = atomic64_read(&ssi_counters.rejected);
	out->connect_attempts = atomic64_read(&ssi_counters.connect_attempts);
	out->reads = atomic64_read(&ssi_counters.reads);
	out->exposed = atomic64_read(&ssi_counters.exposed);
	out->links_up = 0;
	spin_lock(&ssi_peers_lock);
	for (i = 0; i < ssi_max_nodes; i++) {
		struct ssi_conn *c = ssi_peers[i].conn;

		if (!c)
			continue;
		spin_lock(&c->lock);
		if (ssi_rdma_conn_announced(&c->fsm))
			out->links_up++;
		spin_unlock(&c->lock);
	}
	spin_unlock(&ssi_peers_lock);
}
