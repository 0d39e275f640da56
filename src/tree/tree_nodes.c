/* tree_nodes.c — pods/<p>/nodes/ of a multi-node pod (DESIGN.md "The
 * account: disks, SSH keys, nodes"): nodes/<n>/ (n from 0, the API's node
 * order) with the node's ip and ssh, and its run, exit and jobs/ — the
 * pod's own hooks and jobs/ table, under the node's key (nodes.h), so a
 * node's jobs, SSH session and known_hosts name are its own; and
 * nodes/all/, whose run starts one script on every node and streams their
 * output, each line prefixed with "[n] ", and whose exit is 0 when every
 * node's is, else the first other status by node order.
 *
 * nodes/<n>/fs and home (links to the hidden .fs and .home) are the
 * node's files over its own SFTP client: tree_walk.c resolves them as a
 * pod's, podfiles.h serves them. */
#include "tree_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "intent.h"
#include "jobfiles.h"
#include "jobs.h"
#include "log.h"
#include "nodes.h"
#include "runs.h"

/* ---- nodes/ and nodes/<n>/ ---- */

/* Nodes past this one are not looked for in a history pod's jobs. */
#define HIST_NODES_MAX 64

/* How many nodes a pod's nodes/ has: a live pod's node count; a history
 * pod's, up to the last node other than 0 whose jobs are on record (0
 * when none: node 0's are history/<p>/jobs/ itself). */
static size_t shown_count(struct tree *t, const struct pod *p, bool history)
{
	if (!history)
		return nodes_count(p);
	struct jobs *js = tree_jobs(t);
	size_t count = 0;
	for (size_t i = 1; js && p->id && i < HIST_NODES_MAX; i++) {
		char *key = node_key(p->id, i);
		if (jobs_pod_has(js, key))
			count = i + 1;
		free(key);
	}
	return count;
}

bool nodes_shown(struct tree *t, const struct node *n)
{
	return (n->dir == D_POD || n->dir == D_HIST) && n->obj &&
	       shown_count(t, n->obj, n->dir == D_HIST) >= 2;
}

int nodes_step(struct tree *t, struct node *n, const char *name)
{
	const struct pod *p = n->obj;
	if (!p || strspn(name, "0123456789") != strlen(name) ||
	    (name[0] == '0' && name[1]) || strlen(name) > 6)
		return -ENOENT;
	size_t ix = (size_t)strtoul(name, NULL, 10);
	if (ix >= shown_count(t, p, n->dir == D_HNODES))
		return -ENOENT;
	if (ix) {
		/* The interned key outlives every node struct that copies
		 * it (a handful of strings per pod). */
		char *key = node_key(p->id, ix);
		n->pod_id = str_intern(key);
		free(key);
	}
	n->dir = dirs[n->dir].child;
	return 0;
}

int nodes_list(struct tree *t, const struct node *n, add_fn add, void *ctx)
{
	const struct pod *p = n->obj;
	size_t count = p ? shown_count(t, p, n->dir == D_HNODES) : 0;
	for (size_t i = 0; i < count; i++) {
		char name[32];
		snprintf(name, sizeof name, "%zu", i);
		if (add(ctx, name))
			break;
	}
	return 0;
}

int r_node_value(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	(void)obj;
	(void)out;
	return 0; /* never called: tree_render calls nodes_render */
}

/* The node's index: its key is the pod's id, or `<id>-<n>`. */
static size_t node_ix(const struct node *n)
{
	const struct pod *p = n->obj;
	size_t len = strlen(p->id);
	if (!n->pod_id || strncmp(n->pod_id, p->id, len) ||
	    n->pod_id[len] != '-')
		return 0;
	return (size_t)strtoul(n->pod_id + len + 1, NULL, 10);
}

int nodes_render(struct tree *t, const struct node *n, struct buf *out)
{
	(void)t;
	const struct pod *p = n->obj;
	if (!p)
		return -ENOENT;
	const struct strlist *l =
	    !strcmp(n->file->name, "ip") ? &p->ip : &p->ssh;
	const char *v = node_entry(l, node_ix(n));
	for (; *v; v++) { /* one line: control characters become spaces */
		unsigned char c = (unsigned char)*v;
		buf_addc(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	buf_addc(out, '\n');
	return 0;
}

/* ---- nodes/all/run and exit ----
 *
 * A handle follows one job per node: a reader the nodes' latest as of its
 * open, a writer those its own script started. A crawl's handle reads
 * what is there now and never waits, as run and exit do (jobfiles.h): run
 * the whole lines so far, exit empty while a node's job runs. mu guards
 * everything but what is fixed at open (n, keys, run, own, crawl);
 * read_mu lets one read at a time walk the nodes' output (it is held while
 * waiting for output, never across network I/O: jobs start outside it). */
struct allfile {
	bool run, own;
	size_t n;    /* nodes */
	char **keys; /* node keys */
	pthread_mutex_t mu, read_mu;
	struct buf data;   /* run: the script so far; exit: the exit text */
	bool too_big;	   /* run: over RUNS_MAX_SCRIPT */
	bool exit_done;	   /* exit: data holds the text */
	bool crawl;	   /* a crawl's handle (intent.h) */
	struct job **jobs; /* per node, or NULL */
	unsigned long long *cur;
	struct buf *part; /* per node: a line not yet whole */
	bool *ended;	  /* per node: its output all read */
	struct buf ready; /* prefixed lines not yet returned */
	size_t ready_off;
};

static struct allfile *af(struct tree_handle *h)
{
	return h->priv;
}

static bool gave_up(struct tree_handle *h)
{
	return h->interrupted && h->interrupted(h->interrupted_arg);
}

static int all_open(struct tree_handle *h, const struct node *n, bool run)
{
	const struct pod *p = n->obj;
	if (!p || !h->pod_id)
		return -ENOENT;
	struct allfile *a = xcalloc(1, sizeof *a);
	a->run = run;
	a->own = h->acc != O_RDONLY;
	a->crawl = !a->own && intent_crawler(h->pid);
	a->n = nodes_count(p);
	a->keys = xcalloc(a->n, sizeof *a->keys);
	a->jobs = xcalloc(a->n, sizeof *a->jobs);
	a->cur = xcalloc(a->n, sizeof *a->cur);
	a->part = xcalloc(a->n, sizeof *a->part);
	a->ended = xcalloc(a->n, sizeof *a->ended);
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->read_mu, NULL);
	buf_init(&a->data);
	buf_init(&a->ready);
	struct jobs *js = tree_jobs(h->tree);
	for (size_t i = 0; i < a->n; i++) {
		a->keys[i] = node_key(p->id, i);
		buf_init(&a->part[i]);
		if (!a->own && js)
			a->jobs[i] = jobs_latest(js, a->keys[i]);
	}
	h->priv = a;
	return 0;
}

static int all_run_open(struct tree_handle *h, const struct node *n)
{
	return all_open(h, n, true);
}

static int all_exit_open(struct tree_handle *h, const struct node *n)
{
	return all_open(h, n, false);
}

/* The gathered script starts on every node, one after the other (each
 * returns once started, so they run at once). The first failure is the
 * call's; the nodes started before it keep their jobs. */
static int all_start(struct tree_handle *h)
{
	struct allfile *a = af(h);
	pthread_mutex_lock(&a->mu);
	struct buf script = a->data;
	bool too_big = a->too_big;
	buf_init(&a->data);
	a->too_big = false;
	pthread_mutex_unlock(&a->mu);
	struct jobs *js = tree_jobs(h->tree);
	int rc = 0;
	if (too_big) {
		plog("run", h->path,
		     "the script is over the limit of %zu bytes: nothing was "
		     "sent",
		     RUNS_MAX_SCRIPT);
		rc = -E2BIG;
	} else if (script.len && !js) {
		rc = -ENOTCONN;
	}
	for (size_t i = 0; !rc && script.len && i < a->n; i++) {
		struct job *jb = NULL;
		rc = jobs_run(js, a->keys[i], script.data, script.len,
			      h->interrupted, h->interrupted_arg, &jb);
		if (rc)
			break;
		tree_jobs_changed(h->tree, a->keys[i], NULL);
		pthread_mutex_lock(&a->mu);
		struct job *old = a->jobs[i];
		a->jobs[i] = jb;
		a->cur[i] = 0;
		a->ended[i] = false;
		a->part[i].len = 0;
		a->exit_done = false;
		pthread_mutex_unlock(&a->mu);
		job_put(old);
	}
	buf_free(&script);
	return rc;
}

static int all_write(struct tree_handle *h, const char *data, size_t size,
		     off_t off)
{
	(void)off;
	struct allfile *a = af(h);
	pthread_mutex_lock(&a->mu);
	bool first = !a->data.len && !a->too_big;
	pthread_mutex_unlock(&a->mu);
	struct runs *r = tree_runs(h->tree);
	for (size_t i = 0; first && size && i < a->n; i++) {
		int rc = r ? runs_check(r, a->keys[i]) : -ENOTCONN;
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&a->mu);
	if (!a->too_big && a->data.len + size > RUNS_MAX_SCRIPT) {
		a->too_big = true;
		buf_free(&a->data);
		buf_init(&a->data);
	}
	if (!a->too_big)
		buf_add(&a->data, data, size);
	bool refused = a->too_big;
	pthread_mutex_unlock(&a->mu);
	return refused ? -E2BIG : (int)size;
}

/* As run's (jobfiles.c): the last holder's close starts the script on
 * every node; an earlier one leaves it to that close or the RELEASE. */
static int all_flush(struct tree_handle *h, pid_t closer)
{
	return af(h)->own && jobfile_last_close(h, closer) ? all_start(h) : 0;
}

/* A line longer than this is passed on in pieces of it, each a line. */
#define ALL_MAX_LINE 65536

/* Node i's whole lines in part go to ready, prefixed; with `end` (or past
 * ALL_MAX_LINE), the rest too, ended with a newline. Under mu. */
static void take_lines(struct allfile *a, size_t i, bool end)
{
	struct buf *p = &a->part[i];
	size_t start = 0;
	for (size_t k = 0; k < p->len; k++)
		if (p->data[k] == '\n') {
			buf_printf(&a->ready, "[%zu] ", i);
			buf_add(&a->ready, p->data + start, k + 1 - start);
			start = k + 1;
		}
	if ((end || p->len - start > ALL_MAX_LINE) && start < p->len) {
		buf_printf(&a->ready, "[%zu] ", i);
		buf_add(&a->ready, p->data + start, p->len - start);
		buf_addc(&a->ready, '\n');
		start = p->len;
	}
	if (start) {
		memmove(p->data, p->data + start, p->len - start);
		p->len -= start;
	}
}

/* Gathers what the nodes wrote since the last look (a chunk each); true
 * when every node's output is all read. *wait_on: a job to wait on
 * (referenced) at *wait_off, or NULL (*wait_off ~0 when some came: look
 * again at once). Under mu. */
static bool gather(struct allfile *a, struct job **wait_on,
		   unsigned long long *wait_off)
{
	bool all_ended = true;
	*wait_on = NULL;
	*wait_off = 0;
	char chunk[16384];
	for (size_t i = 0; i < a->n; i++) {
		struct job *c = a->jobs[i];
		if (!c || a->ended[i])
			continue;
		bool eof = false; /* a chunk a look: ready stays small */
		ssize_t got = job_read(c, a->cur[i], chunk, sizeof chunk, &eof);
		if (got > 0) {
			*wait_off = ~0ULL; /* read on: no wait */
			a->cur[i] += (unsigned long long)got;
			buf_add(&a->part[i], chunk, (size_t)got);
			eof = false; /* more may follow at once */
		}
		take_lines(a, i, eof);
		if (eof) {
			a->ended[i] = true;
			continue;
		}
		all_ended = false;
		if (!*wait_on && *wait_off != ~0ULL) {
			*wait_on = job_get(c);
			*wait_off = a->cur[i];
		}
	}
	return all_ended;
}

static int all_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	(void)off; /* a stream */
	struct allfile *a = af(h);
	if (a->own) {
		int rc = all_start(h);
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&a->read_mu);
	int rc = 0;
	for (;;) {
		pthread_mutex_lock(&a->mu);
		struct job *w = NULL;
		unsigned long long woff = 0;
		bool done =
		    a->ready_off < a->ready.len ? false : gather(a, &w, &woff);
		size_t have = a->ready.len - a->ready_off;
		if (have) {
			size_t n = have < size ? have : size;
			memcpy(out, a->ready.data + a->ready_off, n);
			a->ready_off += n;
			if (a->ready_off == a->ready.len)
				a->ready.len = a->ready_off = 0;
			rc = (int)n;
		}
		pthread_mutex_unlock(&a->mu);
		if (have || done || (a->crawl && woff != ~0ULL)) {
			job_put(w); /* a crawl: nothing more now is the end */
			break;
		}
		if (h->nonblock)
			rc = -EAGAIN;
		else if (gave_up(h))
			rc = -EINTR;
		else if (w && woff != ~0ULL)
			job_wait(w, woff, 0.1);
		job_put(w);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&a->read_mu);
	return rc;
}

/* 0 when every node's is, else the first other by node order; an empty
 * line before any job. Waits (interruptibly) for every node's job; for a
 * crawl, 1 at once while one runs (read as empty). */
static int all_exit_fill(struct tree_handle *h)
{
	struct allfile *a = af(h);
	pthread_mutex_lock(&a->mu);
	bool done = a->exit_done;
	struct job **jobs = xcalloc(a->n, sizeof *jobs);
	for (size_t i = 0; i < a->n && !done; i++)
		jobs[i] = a->jobs[i] ? job_get(a->jobs[i]) : NULL;
	pthread_mutex_unlock(&a->mu);
	int rc = 0;
	struct buf text, one;
	buf_init(&text);
	buf_init(&one);
	bool any = false;
	for (size_t i = 0; i < a->n && !done && !rc; i++) {
		if (!jobs[i])
			continue;
		while (!rc && !job_wait_done(jobs[i], a->crawl ? 0 : 0.2))
			rc = a->crawl	   ? 1
			     : h->nonblock ? -EAGAIN
			     : gave_up(h)  ? -EINTR
					   : 0;
		if (rc)
			break;
		one.len = 0;
		job_exit_text(jobs[i], &one);
		if (!any || (text.len == 2 && !memcmp(text.data, "0\n", 2) &&
			     (one.len != 2 || memcmp(one.data, "0\n", 2)))) {
			text.len = 0;
			buf_add(&text, one.data, one.len);
		}
		any = true;
	}
	for (size_t i = 0; i < a->n; i++)
		job_put(jobs[i]);
	free(jobs);
	pthread_mutex_lock(&a->mu);
	if (!rc && !a->exit_done) {
		if (any)
			buf_add(&a->data, text.data, text.len);
		else
			buf_addc(&a->data, '\n');
		a->exit_done = true;
	}
	pthread_mutex_unlock(&a->mu);
	buf_free(&text);
	buf_free(&one);
	return rc;
}

static int all_exit_read(struct tree_handle *h, char *out, size_t size,
			 off_t off)
{
	int rc = all_exit_fill(h);
	if (rc)
		return rc < 0 ? rc : 0;
	struct allfile *a = af(h); /* data no longer changes */
	if (off < 0 || (size_t)off >= a->data.len)
		return 0;
	size_t n = a->data.len - (size_t)off;
	if (n > size)
		n = size;
	memcpy(out, a->data.data + off, n);
	return (int)n;
}

static void all_release(struct tree_handle *h)
{
	struct allfile *a = af(h);
	/* Written, and no close was the last holder's (a child exiting): it
	 * starts now; a failure can only be logged. */
	if (a->own) {
		int rc = all_start(h);
		if (rc)
			plog("run", h->path, "the script did not start: %s",
			     strerror(-rc));
	}
	for (size_t i = 0; i < a->n; i++) {
		job_put(a->jobs[i]);
		free(a->keys[i]);
		buf_free(&a->part[i]);
	}
	free(a->jobs);
	free(a->keys);
	free(a->part);
	free(a->cur);
	free(a->ended);
	buf_free(&a->data);
	buf_free(&a->ready);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->read_mu);
	free(a);
	h->priv = NULL;
}

const struct file_hooks nodeall_run_hooks = {
    .open = all_run_open,
    .read = all_read,
    .write = all_write,
    .flush = all_flush,
    .release = all_release,
};

const struct file_hooks nodeall_exit_hooks = {
    .open = all_exit_open,
    .read = all_exit_read,
    .release = all_release,
};
