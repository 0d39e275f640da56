/* tree.c — see tree.h. The tables below are the tree; the walker and the
 * listers only read them. */
#include "tree.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cost.h"
#include "guards.h"
#include "jobfiles.h"
#include "jobs.h"
#include "lifecycle.h"
#include "log.h"
#include "naming.h"
#include "podlog.h"
#include "template.h"

struct tree {
	struct tree_opts o;
	tree_changed_fn changed; /* may be NULL */
	void *changed_arg;
	atomic_ulong generation;
};

static void tell(struct tree *t, const char *path, bool gone);
static void tell_pod_dirs(struct tree *t, const char *top, const char *dir,
			  const char *id);

/* ---- value helpers ---- */

/* One value and a newline; control characters a server sent become
 * spaces, so a value is always exactly one line. */
static void add_value(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_addc(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	buf_addc(b, '\n');
}

static void add_num(struct buf *b, struct num n)
{
	num_render(b, n);
	buf_addc(b, '\n');
}

static void add_list(struct buf *b, const struct strlist *l)
{
	if (!l->n)
		buf_addc(b, '\n'); /* unknown: one empty line */
	for (size_t i = 0; i < l->n; i++)
		add_value(b, l->v[i]);
}

static void add_bool(struct buf *b, int v)
{
	add_value(b, v < 0 ? "" : v ? "true" : "false");
}

/* ---- offers ---- */

#define OFFER_STR(fn, field)                                                   \
	static int fn(struct tree *t, const void *obj, struct buf *out)        \
	{                                                                      \
		(void)t;                                                       \
		add_value(out, ((const struct offer *)obj)->field);            \
		return 0;                                                      \
	}
#define OFFER_NUM(fn, field)                                                   \
	static int fn(struct tree *t, const void *obj, struct buf *out)        \
	{                                                                      \
		(void)t;                                                       \
		add_num(out, ((const struct offer *)obj)->field);              \
		return 0;                                                      \
	}

OFFER_NUM(r_offer_price, price)
OFFER_STR(r_offer_stock, stock)
OFFER_STR(r_offer_provider, provider)
OFFER_STR(r_offer_data_center, data_center)
OFFER_STR(r_offer_country, country)
OFFER_STR(r_offer_region, region)
OFFER_STR(r_offer_socket, socket)
OFFER_NUM(r_offer_gpu_count, gpu_count)
OFFER_NUM(r_offer_gpu_memory, gpu_memory)
OFFER_NUM(r_offer_vcpus, vcpu.def)
OFFER_NUM(r_offer_memory, memory.def)
OFFER_NUM(r_offer_disk, disk.def)
OFFER_STR(r_offer_cloud_id, cloud_id)
OFFER_STR(r_offer_security, security)
OFFER_NUM(r_offer_prepaid, prepaid)

static int r_offer_spot(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_bool(out, ((const struct offer *)obj)->is_spot);
	return 0;
}

static int r_offer_images(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_list(out, &((const struct offer *)obj)->images);
	return 0;
}

static int r_offer_json(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	offer_json_text(obj, out);
	return 0;
}

static const struct file_def offer_files[] = {
    {.name = "price", .render = r_offer_price},
    {.name = "stock", .render = r_offer_stock},
    {.name = "provider", .render = r_offer_provider},
    {.name = "data_center", .render = r_offer_data_center},
    {.name = "country", .render = r_offer_country},
    {.name = "region", .render = r_offer_region},
    {.name = "socket", .render = r_offer_socket},
    {.name = "gpu_count", .render = r_offer_gpu_count},
    {.name = "gpu_memory", .render = r_offer_gpu_memory},
    {.name = "vcpus", .render = r_offer_vcpus},
    {.name = "memory", .render = r_offer_memory},
    {.name = "disk", .render = r_offer_disk},
    {.name = "spot", .render = r_offer_spot},
    {.name = "prepaid", .render = r_offer_prepaid},
    {.name = "cloud_id", .render = r_offer_cloud_id},
    {.name = "images", .render = r_offer_images},
    {.name = "security", .render = r_offer_security},
    {.name = "json", .render = r_offer_json},
    {.name = NULL},
};

/* ---- pods (live and history) ---- */

#define POD_STR(fn, expr)                                                      \
	static int fn(struct tree *t, const void *obj, struct buf *out)        \
	{                                                                      \
		(void)t;                                                       \
		const struct pod *p = obj;                                     \
		add_value(out, expr);                                          \
		return 0;                                                      \
	}

POD_STR(r_pod_id, p->id)
POD_STR(r_pod_name, p->name)
POD_STR(r_pod_status, pod_status(p))
POD_STR(r_pod_gpu_type, p->gpu_type)
POD_STR(r_pod_provider, p->provider)
POD_STR(r_pod_image, p->image)
POD_STR(r_pod_created, p->created)

static int r_pod_gpu_count(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_num(out, ((const struct pod *)obj)->gpu_count);
	return 0;
}

static int r_pod_price(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_num(out, pod_price(obj));
	return 0;
}

static int r_pod_progress(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_num(out, ((const struct pod *)obj)->progress);
	return 0;
}

static int r_pod_cost(struct tree *t, const void *obj, struct buf *out)
{
	double cost;
	if (cost_pod_now(t->o.cache, obj, &cost) == 0)
		buf_printf(out, "%.4f", cost);
	buf_addc(out, '\n');
	return 0;
}

static int r_pod_ssh(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_list(out, &((const struct pod *)obj)->ssh);
	return 0;
}

static int r_pod_ip(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_list(out, &((const struct pod *)obj)->ip);
	return 0;
}

static int r_pod_json(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	buf_adds(out, ((const struct pod *)obj)->json);
	return 0;
}

/* The pod's own log, fetched (rate-limited) when the file is opened. */
static int r_pod_log(struct tree *t, const void *obj, struct buf *out)
{
	if (!t->o.podlog)
		return 0;
	return podlog_read(t->o.podlog, ((const struct pod *)obj)->id, out);
}

/* `<type>/<offer>` the pod was rented from: the one offer of the held
 * listing (fetched no more often than the offers' freshness window) whose
 * fields agree with the pod's; an empty line when none or several do.
 * `pods`, the snapshot p is in, keeps the answer (snap_pod_offer). */
static int pod_offer(struct tree *t, const struct snap *pods,
		     const struct pod *p, struct buf *out)
{
	struct snap *s;
	/* A type no directory could hold: no offer, and no fetch for it. */
	char *dir = p->gpu_type ? gpu_type_dir(p->gpu_type) : NULL;
	bool usable = dir != NULL;
	free(dir);
	if (usable && cache_get(t->o.cache, SNAP_OFFERS, CACHE_TTL, &s) == 0) {
		const struct gpu_type *g;
		const struct offer *found = snap_pod_offer(pods, p, s, &g);
		if (found)
			buf_printf(out, "%s/%s", type_name(g), found->name);
		snap_put(s);
	}
	buf_addc(out, '\n');
	return 0;
}

/* Rendered through tree_render, which passes the node's snapshot. */
static int r_pod_offer(struct tree *t, const void *obj, struct buf *out)
{
	return pod_offer(t, NULL, obj, out);
}

/* ---- guards (guards.h): the owner's, live pods only ---- */

static int render_guard(struct tree *t, const void *obj, enum guard_kind k,
			struct buf *out)
{
	if (t->o.guards)
		guards_render(t->o.guards, ((const struct pod *)obj)->id, k,
			      out);
	else
		buf_addc(out, '\n');
	return 0;
}

/* A write to a guard file of a pod that is listed (a pod gone meanwhile:
 * ENOENT). */
static int store_guard(struct tree *t, const char *pod_id, enum guard_kind k,
		       const char *data, size_t len)
{
	if (!t->o.guards || !pod_id)
		return -EACCES;
	/* The held listing (the file was just resolved from one): a guard
	 * write never waits for the API. */
	struct snap *s;
	int rc = cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s);
	if (rc == -ENOENT)
		rc = cache_get(t->o.cache, SNAP_PODS, CACHE_TTL, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pod_id);
	char *name = p ? xstrdup(p->dir) : NULL;
	snap_put(s);
	if (!name) {
		plog("write", pod_id, "refused: pod %s is gone", pod_id);
		return -ENOENT;
	}
	rc = guards_set(t->o.guards, pod_id, name, k, data, len);
	tell_pod_dirs(t, "/pods", name, pod_id);
	free(name);
	return rc;
}

#define GUARD_FILE(r, w, k)                                                    \
	static int r(struct tree *t, const void *obj, struct buf *out)         \
	{                                                                      \
		return render_guard(t, obj, k, out);                           \
	}                                                                      \
	static int w(struct tree *t, const char *id, const char *d, size_t n)  \
	{                                                                      \
		return store_guard(t, id, k, d, n);                            \
	}

GUARD_FILE(r_deadline, w_deadline, G_DEADLINE)
GUARD_FILE(r_idle, w_idle, G_IDLE)
GUARD_FILE(r_max_cost, w_max_cost, G_MAX_COST)
GUARD_FILE(r_lease, w_lease, G_LEASE)

/* One line per armed guard; none: one empty line, as an empty list. */
static int r_guards(struct tree *t, const void *obj, struct buf *out)
{
	size_t before = out->len;
	if (t->o.guards)
		guards_list(t->o.guards, ((const struct pod *)obj)->id, out);
	if (out->len == before)
		buf_addc(out, '\n');
	return 0;
}

void tree_lease(struct tree *t, const char *pod_id, bool hold)
{
	if (!t->o.guards)
		return;
	if (!hold) {
		guards_lease_release(t->o.guards, pod_id);
		return;
	}
	struct snap *s = NULL;
	const struct pod *p = NULL;
	if (cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s) == 0)
		p = snap_pod(s, pod_id);
	else
		s = NULL;
	guards_lease_hold(t->o.guards, pod_id, p ? p->dir : pod_id);
	if (s)
		snap_put(s);
}

static const struct file_def pod_files[] = {
    {.name = "id", .render = r_pod_id},
    {.name = "name", .render = r_pod_name},
    {.name = "status", .render = r_pod_status},
    {.name = "gpu_type", .render = r_pod_gpu_type},
    {.name = "gpu_count", .render = r_pod_gpu_count},
    {.name = "provider", .render = r_pod_provider},
    {.name = "image", .render = r_pod_image},
    {.name = "price", .render = r_pod_price},
    {.name = "cost", .render = r_pod_cost},
    {.name = "created", .render = r_pod_created},
    {.name = "ssh", .render = r_pod_ssh},
    {.name = "ip", .render = r_pod_ip},
    {.name = "progress", .render = r_pod_progress},
    {.name = "json", .render = r_pod_json},
    {.name = "offer", .render = r_pod_offer},
    {.name = "log", .render = r_pod_log, .flags = F_STREAM | F_OWNER},
    {.name = "run", .flags = F_STREAM | F_LIVE, .hooks = &run_hooks},
    {.name = "exit", .flags = F_STREAM | F_LIVE, .hooks = &exit_hooks},
    {.name = "deadline",
     .render = r_deadline,
     .flags = F_LIVE,
     .store = w_deadline},
    {.name = "idle", .render = r_idle, .flags = F_LIVE, .store = w_idle},
    {.name = "max_cost",
     .render = r_max_cost,
     .flags = F_LIVE,
     .store = w_max_cost},
    {.name = "lease",
     .render = r_lease,
     .flags = F_LIVE | F_LEASE,
     .store = w_lease},
    {.name = "guards", .render = r_guards, .flags = F_LIVE | F_OWNER},
    {.name = NULL},
};

/* ---- jobs (jobs.h): the node's object is the job ---- */

static int r_job_state(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	buf_adds(out, job_state_text(job_state((struct job *)obj)));
	return 0;
}

/* A time as the other time files show it; not yet: an empty line. */
static void add_time(struct buf *out, time_t when)
{
	char iso[32] = "";
	if (when)
		fmt_iso8601(iso, when);
	add_value(out, iso);
}

static int r_job_started(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_time(out, job_started((struct job *)obj));
	return 0;
}

static int r_job_ended(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_time(out, job_ended((struct job *)obj));
	return 0;
}

/* A live pod's job; all of it the owner's (job output, its script). */
static const struct file_def job_files[] = {
    {.name = "cmd", .hooks = &cmd_hooks},
    {.name = "out", .hooks = &out_hooks},
    {.name = "exit", .flags = F_STREAM, .hooks = &exit_hooks},
    {.name = "state", .render = r_job_state, .flags = F_OWNER},
    {.name = "started", .render = r_job_started, .flags = F_OWNER},
    {.name = "ended", .render = r_job_ended, .flags = F_OWNER},
    {.name = "signal", .flags = F_WRITE_ONLY, .hooks = &signal_hooks},
    {.name = NULL},
};

/* A job of a pod in history: the same, read-only. */
static const struct file_def hjob_files[] = {
    {.name = "cmd", .hooks = &cmd_ro_hooks},
    {.name = "out", .hooks = &out_hooks},
    {.name = "exit", .flags = F_STREAM, .hooks = &exit_hooks},
    {.name = "state", .render = r_job_state, .flags = F_OWNER},
    {.name = "started", .render = r_job_started, .flags = F_OWNER},
    {.name = "ended", .render = r_job_ended, .flags = F_OWNER},
    {.name = NULL},
};

/* ---- root files ---- */

static int r_balance(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	const struct snap *s = obj;
	add_num(out, s->wallet.balance);
	return 0;
}

/* What mkdir uses, from the same store (empty when there is none). */
static int r_config(struct tree *t, const void *obj, struct buf *out)
{
	(void)obj;
	if (t->o.tmpl)
		template_store_text(t->o.tmpl, out);
	return 0;
}

static int r_log(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	(void)obj;
	log_render(out);
	return 0;
}

static int r_stats(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	(void)obj;
	stats_render(out);
	return 0;
}

static int w_config(struct tree *t, const char *pod_id, const char *data,
		    size_t len)
{
	(void)pod_id;
	int rc = template_store_replace(t->o.tmpl, data, len);
	tell(t, "/config", false);
	return rc;
}

/* A complete line that is bad alone fails the write() that wrote it. */
static int c_config(struct tree *t, const char *data, size_t len, size_t from)
{
	struct buf err;
	buf_init(&err);
	int rc = template_check_lines(data, len, from, &err);
	if (rc)
		plog("config", t->o.tmpl->path,
		     "refused at write, the old template is kept: %s",
		     err.data);
	buf_free(&err);
	return rc;
}

/* The ctl file's commands, one per line. */
static int w_ctl(struct tree *t, const char *pod_id, const char *data,
		 size_t len)
{
	(void)pod_id;
	while (len) {
		size_t n = 0;
		while (n < len && data[n] != '\n' && data[n] != '\r')
			n++;
		const char *line = data;
		size_t ll = n;
		data += n < len ? n + 1 : n;
		len -= n < len ? n + 1 : n;
		while (ll && (line[ll - 1] == ' ' || line[ll - 1] == '\t'))
			ll--;
		while (ll && (*line == ' ' || *line == '\t'))
			line++, ll--;
		if (!ll)
			continue;
		if (ll == 7 && !memcmp(line, "refresh", 7)) {
			cache_refresh(t->o.cache);
			podlog_refresh(t->o.podlog);
			tree_changed_all(t);
			plog("ctl", "/ctl",
			     "refresh: every cached answer marked stale");
			continue;
		}
		plog("ctl", "/ctl", "unknown command '%.*s' (known: refresh)",
		     (int)(ll > 64 ? 64 : ll), line);
		return -EINVAL;
	}
	return 0;
}

static const struct file_def root_files[] = {
    {.name = "balance", .render = r_balance, .needs = NEEDS(SNAP_WALLET)},
    {.name = "config",
     .render = r_config,
     .store = w_config,
     .check = c_config},
    {.name = "log", .render = r_log, .flags = F_OWNER},
    {.name = "stats", .render = r_stats, .flags = F_OWNER},
    {.name = "ctl", .flags = F_WRITE_ONLY | F_PER_WRITE, .store = w_ctl},
    {.name = NULL},
};

static const struct file_def no_files[] = {{.name = NULL}};

/* ---- directories ---- */

struct subdir {
	const char *name;
	enum dir_kind kind;
};

struct dir_def {
	const struct subdir *subdirs; /* fixed subdirectories, NULL-ended */
	const struct file_def *files;
	int listing; /* snapshot kind its dynamic entries come from, or -1 */
	enum dir_kind child; /* kind of a dynamic entry */
};

static const struct subdir root_subdirs[] = {{"availability", D_AVAIL},
					     {CHEAPEST_NAME, D_CHEAPEST},
					     {"pods", D_PODS},
					     {"history", D_HISTORY},
					     {NULL, D_ROOT}};
static const struct subdir pod_subdirs[] = {{"jobs", D_JOBS}, {NULL, D_ROOT}};
static const struct subdir hist_subdirs[] = {{"jobs", D_HJOBS}, {NULL, D_ROOT}};
static const struct subdir no_subdirs[] = {{NULL, D_ROOT}};

static const struct dir_def dirs[D_KINDS] = {
    [D_ROOT] = {root_subdirs, root_files, -1, D_ROOT},
    [D_AVAIL] = {no_subdirs, no_files, SNAP_OFFERS, D_TYPE},
    [D_TYPE] = {no_subdirs, no_files, SNAP_OFFERS, D_OFFER},
    [D_OFFER] = {no_subdirs, offer_files, -1, D_OFFER},
    [D_PODS] = {no_subdirs, no_files, SNAP_PODS, D_POD},
    [D_POD] = {pod_subdirs, pod_files, -1, D_POD},
    [D_HISTORY] = {no_subdirs, no_files, SNAP_HISTORY, D_HIST},
    [D_HIST] = {hist_subdirs, pod_files, -1, D_HIST},
    [D_CHEAPEST] = {no_subdirs, no_files, SNAP_OFFERS, D_CHEAPEST},
    /* Their entries come from the job store (jobs_dir()), not a listing. */
    [D_JOBS] = {no_subdirs, no_files, -1, D_JOB},
    [D_JOB] = {no_subdirs, job_files, -1, D_JOB},
    [D_HJOBS] = {no_subdirs, no_files, -1, D_HJOB},
    [D_HJOB] = {no_subdirs, hjob_files, -1, D_HJOB},
};

/* Whether a directory kind lists a pod's jobs. */
static bool jobs_dir(enum dir_kind k)
{
	return k == D_JOBS || k == D_HJOBS;
}

/* ---- walking ---- */

struct tree *tree_new(const struct tree_opts *o)
{
	struct tree *t = xcalloc(1, sizeof *t);
	t->o = *o;
	return t;
}

void tree_free(struct tree *t)
{
	free(t);
}

struct cache *tree_cache(struct tree *t)
{
	return t->o.cache;
}

struct runs *tree_runs(struct tree *t)
{
	return t->o.runs;
}

struct jobs *tree_jobs(struct tree *t)
{
	return t->o.jobs;
}

bool file_writable(const struct file_def *f)
{
	return f->store || (f->hooks && f->hooks->write);
}

void node_release(struct node *n)
{
	if (n->snap)
		snap_put(n->snap);
	n->snap = NULL;
	job_put(n->job);
	n->job = NULL;
}

bool probe_name(const char *name)
{
	static const char *const probes[] = {
	    "HEAD",	 "objects",	"refs",	       "commondir",
	    "gitdir",	 "autorun.inf", "Desktop.ini", "desktop.ini",
	    "Thumbs.db", "folder.jpg",	NULL};
	if (name[0] == '.')
		return true;
	for (int i = 0; probes[i]; i++)
		if (!strcmp(name, probes[i]))
			return true;
	return false;
}

/* History pods have the same files as live ones, but no run and exit. */
static bool file_in(const struct file_def *f, enum dir_kind dir)
{
	return !(f->flags & F_LIVE) || dir != D_HIST;
}

static const struct file_def *find_file(const struct file_def *files,
					enum dir_kind dir, const char *name)
{
	for (; files->name; files++)
		if (!strcmp(files->name, name) && file_in(files, dir))
			return files;
	return NULL;
}

/* From a jobs/ directory into its entry: `latest` (a link to the newest
 * job) or a job's directory. */
static int step_job(struct tree *t, struct node *n, const char *name)
{
	struct jobs *js = t->o.jobs;
	if (!js || !n->pod_id)
		return -ENOENT;
	bool latest = !strcmp(name, "latest");
	struct job *jb =
	    latest ? jobs_latest(js, n->pod_id) : jobs_get(js, n->pod_id, name);
	if (!jb)
		return -ENOENT;
	job_put(n->job);
	n->job = jb;
	if (latest) {
		n->type = N_LINK;
		return 0;
	}
	n->obj = jb;
	time_t when = job_started(jb);
	if (when)
		n->mtime = when;
	n->dir = dirs[n->dir].child;
	return 0;
}

/* Steps from directory n into its entry `name`; listings are taken from
 * the cache in `mode`. */
static int step(struct tree *t, struct node *n, const char *name,
		enum cache_mode mode)
{
	const struct dir_def *d = &dirs[n->dir];
	if (n->type != N_DIR)
		return -ENOTDIR;
	for (const struct subdir *sd = d->subdirs; sd->name; sd++)
		if (!strcmp(sd->name, name)) {
			n->dir = sd->kind;
			return 0;
		}
	if (jobs_dir(n->dir))
		return step_job(t, n, name);
	const struct file_def *f = find_file(d->files, n->dir, name);
	if (f) {
		n->type = N_FILE;
		n->file = f;
		/* What is held, however old, or nothing: a lookup or a
		 * listing never waits for the value (tree_render fetches it
		 * for a read). */
		struct snap *s;
		if (f->needs &&
		    cache_get(t->o.cache, (enum snap_kind)(f->needs - 1),
			      CACHE_HELD, &s) == 0) {
			node_release(n);
			n->snap = s;
			n->obj = s;
			n->mtime = s->fetched;
		}
		return 0;
	}
	if (d->listing < 0)
		return -ENOENT;
	/* Real names are safe and never start with '.', so a probe of a
	 * hidden name, or a name no listing could hold, is answered at once;
	 * other probes are answered from what is held. */
	if (name[0] == '.' || !safe_name(name))
		return -ENOENT;
	if (!n->snap) {
		int rc = cache_get(t->o.cache, d->listing, mode, &n->snap);
		if (rc)
			return rc;
		n->mtime = n->snap->fetched;
	}
	switch (n->dir) {
	case D_AVAIL:
		n->gtype = snap_type(n->snap, name);
		if (!n->gtype)
			return -ENOENT;
		break;
	case D_CHEAPEST:
		/* A link to the type's cheapest rentable offer. */
		n->gtype = snap_type(n->snap, name);
		if (!type_cheapest(n->gtype))
			return -ENOENT;
		n->type = N_LINK;
		return 0;
	case D_TYPE:
		n->obj = type_offer(n->gtype, name);
		if (!n->obj)
			return -ENOENT;
		break;
	case D_PODS:
	case D_HISTORY: {
		const struct pod *p = snap_pod(n->snap, name);
		if (!p)
			return -ENOENT;
		n->obj = p;
		n->pod_id = p->id;
		if (!p->history && p->created_t >= 0)
			n->mtime = p->created_t;
		break;
	}
	default:
		return -ENOENT;
	}
	n->dir = d->child;
	return 0;
}

/* Whether the last component of path is a probed name. */
static bool probes_last(const char *path)
{
	size_t end = strlen(path);
	while (end && path[end - 1] == '/')
		end--;
	size_t start = end;
	while (start && path[start - 1] != '/')
		start--;
	char base[256];
	if (end == start || end - start >= sizeof base)
		return false;
	memcpy(base, path + start, end - start);
	base[end - start] = '\0';
	return probe_name(base);
}

int tree_resolve(struct tree *t, const char *path, struct node *n)
{
	memset(n, 0, sizeof *n);
	n->type = N_DIR;
	n->dir = D_ROOT;
	n->mtime = time(NULL);
	if (path[0] != '/')
		return -ENOENT;
	/* A path ending in a probed name is walked through what is held,
	 * parents included: a prompt probing .git in the pod it stands in
	 * must not refetch the listing that holds the pod. (A probed name in
	 * the middle has resolved, so it is a real entry.) */
	enum cache_mode mode = probes_last(path) ? CACHE_HELD : CACHE_TTL;
	char name[256];
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		if (len >= sizeof name) {
			node_release(n);
			return -ENAMETOOLONG;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (n->type != N_DIR) {
			node_release(n);
			return -ENOTDIR;
		}
		int rc = step(t, n, name, mode);
		if (rc) {
			node_release(n);
			return rc;
		}
	}
	return 0;
}

int tree_resolve_dir(struct tree *t, const char *path, struct node *n)
{
	int rc = tree_resolve(t, path, n);
	if (rc)
		return rc;
	if (n->type != N_DIR) {
		node_release(n);
		return -ENOTDIR;
	}
	int kind = dirs[n->dir].listing;
	if (kind >= 0 && !n->snap &&
	    (rc = cache_get(t->o.cache, (enum snap_kind)kind, CACHE_TTL,
			    &n->snap)))
		node_release(n);
	return rc;
}

int tree_child(struct tree *t, const struct node *dir, const char *name,
	       struct node *out)
{
	*out = *dir;
	if (out->snap)
		snap_ref(out->snap);
	job_get(out->job);
	int rc = step(t, out, name, CACHE_TTL);
	if (rc)
		node_release(out);
	return rc;
}

/* A pod's jobs, oldest first, then `latest` when there is one. */
static int list_jobs(struct tree *t, const struct node *n, add_fn add,
		     void *ctx)
{
	if (!t->o.jobs || !n->pod_id)
		return 0;
	if (jobs_list(t->o.jobs, n->pod_id, add, ctx))
		return 0; /* add said stop */
	struct job *latest = jobs_latest(t->o.jobs, n->pod_id);
	if (latest)
		add(ctx, "latest");
	job_put(latest);
	return 0;
}

int tree_list(struct tree *t, const struct node *n, add_fn add, void *ctx)
{
	(void)t;
	if (n->type != N_DIR)
		return -ENOTDIR;
	const struct dir_def *d = &dirs[n->dir];
	for (const struct subdir *sd = d->subdirs; sd->name; sd++)
		if (add(ctx, sd->name))
			return 0;
	for (const struct file_def *f = d->files; f->name; f++)
		if (file_in(f, n->dir) && add(ctx, f->name))
			return 0;
	if (jobs_dir(n->dir))
		return list_jobs(t, n, add, ctx);
	if (d->listing < 0)
		return 0;
	struct snap *s = n->snap;
	struct snap *own = NULL;
	if (!s) {
		int rc = cache_get(t->o.cache, d->listing, CACHE_TTL, &own);
		if (rc)
			return rc;
		s = own;
	}
	switch (n->dir) {
	case D_AVAIL:
		for (size_t i = 0; i < snap_n_types(s); i++)
			if (add(ctx, type_name(snap_type_at(s, i))))
				break;
		break;
	case D_CHEAPEST:
		for (size_t i = 0; i < snap_n_types(s); i++) {
			const struct gpu_type *g = snap_type_at(s, i);
			if (type_cheapest(g) && add(ctx, type_name(g)))
				break;
		}
		break;
	case D_TYPE:
		for (size_t i = 0; i < type_n_offers(n->gtype); i++)
			if (add(ctx, type_offer_at(n->gtype, i)->name))
				break;
		break;
	default:
		for (size_t i = 0; i < snap_n_pods(s); i++)
			if (add(ctx, snap_pod_at(s, i)->dir))
				break;
		break;
	}
	if (own)
		snap_put(own);
	return 0;
}

int tree_render(struct tree *t, const struct node *n, struct buf *out)
{
	if (n->type != N_FILE)
		return -EISDIR;
	if (n->file->render == r_pod_offer)
		return pod_offer(t, n->snap, n->obj, out);
	if (n->file->needs) { /* read: as fresh as the freshness window */
		struct snap *s;
		int rc =
		    cache_get(t->o.cache, (enum snap_kind)(n->file->needs - 1),
			      CACHE_TTL, &s);
		if (rc)
			return rc;
		rc = n->file->render(t, s, out);
		snap_put(s);
		return rc;
	}
	return n->file->render ? n->file->render(t, n->obj, out) : 0;
}

int tree_render_held(struct tree *t, const struct node *n, struct buf *out)
{
	if (n->type == N_FILE && n->file->needs)
		return n->obj ? n->file->render(t, n->obj, out) : -EAGAIN;
	return tree_render(t, n, out);
}

int tree_readlink(struct tree *t, const struct node *n, struct buf *out)
{
	(void)t;
	if (n->type != N_LINK)
		return -EINVAL;
	if (jobs_dir(n->dir)) { /* jobs/latest, relative: `latest -> 3` */
		buf_adds(out, job_name(n->job));
		return 0;
	}
	buf_printf(out, "../availability/%s/%s", type_name(n->gtype),
		   type_cheapest(n->gtype)->name);
	return 0;
}

/* The modes say who may do what (the mount is made with
 * default_permissions, so the kernel enforces them): the mounting user owns
 * everything; others (under allow_other) may list directories and read
 * plain values — offers, cheapest/, balance, the pods' value files — and
 * nothing else. Only the owner can write in a directory (mkdir rents,
 * rmdir returns; the owner's other mkdirs reach primefs, which refuses
 * or acts on them as it sees fit); every file that takes a write (config, ctl,
 * run, guards), every stream (run, exit, a pod's log) and log and stats are the
 * owner's alone. */
mode_t node_mode(const struct node *n)
{
	switch (n->type) {
	case N_DIR:
		return S_IFDIR | 0755;
	case N_LINK:
		return S_IFLNK | 0777;
	default: {
		unsigned fl = n->file->flags;
		if (fl & F_WRITE_ONLY)
			return S_IFREG | 0200;
		if (file_writable(n->file))
			return S_IFREG | 0600;
		if (fl & (F_OWNER | F_STREAM) || n->file->hooks)
			return S_IFREG | 0400;
		return S_IFREG | 0444;
	}
	}
}

/* mkdir jobs/<name> of a live pod: a named job, waiting for its cmd. */
static int mkdir_job(struct tree *t, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *parent = xstrndup(path, (size_t)(slash - path));
	struct node d;
	int rc = tree_resolve(t, parent, &d);
	free(parent);
	if (rc)
		return rc == -ENOENT ? -EPERM : rc;
	if (d.type != N_DIR || !jobs_dir(d.dir))
		rc = -EPERM;
	else if (d.dir == D_HJOBS || !t->o.jobs || !d.pod_id)
		rc = -EPERM; /* history is read-only */
	else if ((rc = jobs_create(t->o.jobs, d.pod_id, slash + 1)) == 0)
		tree_jobs_changed(t, d.pod_id, NULL);
	node_release(&d);
	return rc;
}

int tree_mkdir(struct tree *t, const char *path)
{
	static const char prefix[] = "/pods/";
	const char *name = path + sizeof prefix - 1;
	if (strncmp(path, prefix, sizeof prefix - 1) || strchr(name, '/')) {
		struct node n;
		int rc = tree_resolve(t, path, &n);
		node_release(&n);
		if (rc == 0)
			return -EEXIST;
		return rc == -ENOENT ? mkdir_job(t, path) : -EPERM;
	}
	if (!t->o.life)
		return -EPERM;
	return pod_create(t->o.life, name);
}

int tree_rmdir(struct tree *t, const char *path)
{
	struct node n;
	int rc = tree_resolve(t, path, &n);
	if (rc)
		return rc;
	if (n.type != N_DIR)
		rc = -ENOTDIR;
	else if (n.dir == D_JOB && t->o.jobs) {
		/* Kills the job if it runs and forgets it. */
		char *name = xstrdup(job_name(n.job));
		rc = jobs_remove(t->o.jobs, n.pod_id, name);
		if (rc == 0)
			tree_jobs_changed(t, n.pod_id, name);
		free(name);
	} else if (n.dir != D_POD || !t->o.life)
		rc = -EPERM;
	else
		rc = pod_delete(t->o.life, strrchr(path, '/') + 1);
	node_release(&n);
	return rc;
}

/* ---- kernel caching: which paths a change touches ---- */

static void tell(struct tree *t, const char *path, bool gone)
{
	if (t->changed)
		t->changed(t->changed_arg, path, gone);
}

/* A pod directory and each of its files, under one name. */
static void tell_pod_name(struct tree *t, const char *top, enum dir_kind dk,
			  const char *name, bool gone)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s/%s", top, name);
	tell(t, b.data, gone);
	size_t len = b.len;
	for (const struct file_def *f = pod_files; f->name; f++) {
		if (!file_in(f, dk))
			continue;
		b.len = len;
		buf_printf(&b, "/%s", f->name);
		tell(t, b.data, gone);
	}
	buf_free(&b);
}

/* A pod answers to its directory name and to its id. */
static void tell_pod(struct tree *t, const char *top, enum dir_kind dk,
		     const struct pod *p, bool gone)
{
	tell_pod_name(t, top, dk, p->dir, gone);
	if (strcmp(p->id, p->dir))
		tell_pod_name(t, top, dk, p->id, gone);
}

static void tell_pod_dirs(struct tree *t, const char *top, const char *dir,
			  const char *id)
{
	tell_pod_name(t, top, D_POD, dir, false);
	if (id && strcmp(id, dir))
		tell_pod_name(t, top, D_POD, id, false);
}

/* jobs/, jobs/latest and jobs/<gone> of a pod, under one of its names. */
static void tell_jobs_name(struct tree *t, const char *name, const char *gone)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "/pods/%s/jobs", name);
	tell(t, b.data, false);
	size_t len = b.len;
	buf_adds(&b, "/latest");
	tell(t, b.data, false);
	if (gone) {
		b.len = len;
		buf_printf(&b, "/%s", gone);
		tell(t, b.data, true);
	}
	buf_free(&b);
}

void tree_jobs_changed(struct tree *t, const char *pod_id, const char *gone)
{
	if (!t->changed || !pod_id)
		return;
	atomic_fetch_add(&t->generation, 1);
	struct snap *s = NULL;
	const struct pod *p = NULL;
	if (cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s) == 0)
		p = snap_pod_id(s, pod_id);
	else
		s = NULL;
	if (p && strcmp(p->dir, pod_id))
		tell_jobs_name(t, p->dir, gone);
	tell_jobs_name(t, pod_id, gone);
	if (s)
		snap_put(s);
}

static void diff_pods(struct tree *t, const struct snap *old,
		      const struct snap *fresh)
{
	bool hist = fresh->kind == SNAP_HISTORY;
	const char *top = hist ? "/history" : "/pods";
	enum dir_kind dk = hist ? D_HIST : D_POD;
	for (size_t i = 0; i < snap_n_pods(old); i++) {
		const struct pod *a = snap_pod_at(old, i);
		const struct pod *b = snap_pod_id(fresh, a->id);
		if (!b)
			tell_pod(t, top, dk, a, true);
		else if (strcmp(a->dir, b->dir))
			tell_pod(t, top, dk, a, true); /* renamed */
		else if (strcmp(a->json ? a->json : "", b->json ? b->json : ""))
			tell_pod(t, top, dk, a, false);
	}
	/* New pods: a name may have meant another pod before (by name or by
	 * id), so their paths are told too. */
	for (size_t i = 0; i < snap_n_pods(fresh); i++) {
		const struct pod *b = snap_pod_at(fresh, i);
		const struct pod *a = old ? snap_pod_id(old, b->id) : NULL;
		if (!a || strcmp(a->dir, b->dir))
			tell_pod(t, top, dk, b, false);
	}
}

static void tell_offer(struct tree *t, const char *type, const char *offer,
		       bool gone)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "/availability/%s/%s", type, offer);
	tell(t, b.data, gone);
	size_t len = b.len;
	for (const struct file_def *f = offer_files; f->name; f++) {
		b.len = len;
		buf_printf(&b, "/%s", f->name);
		tell(t, b.data, gone);
	}
	buf_free(&b);
}

static void diff_offers(struct tree *t, const struct snap *old,
			const struct snap *fresh)
{
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < snap_n_types(old); i++) {
		const struct gpu_type *g = snap_type_at(old, i);
		const char *name = type_name(g);
		const struct gpu_type *h = snap_type(fresh, name);
		buf_reset(&b);
		buf_printf(&b, "/availability/%s", name);
		if (!h)
			tell(t, b.data, true);
		for (size_t j = 0; j < type_n_offers(g); j++) {
			const struct offer *o = type_offer_at(g, j);
			const struct offer *n =
			    h ? type_offer(h, o->name) : NULL;
			if (!n)
				tell_offer(t, name, o->name, true);
			else if (!offer_json_same(o, n))
				tell_offer(t, name, o->name, false);
		}
		const struct offer *cw = type_cheapest(g),
				   *ci = type_cheapest(h);
		const char *was = cw ? cw->name : "";
		const char *is = ci ? ci->name : "";
		if (strcmp(was, is)) {
			buf_reset(&b);
			buf_printf(&b, "/%s/%s", CHEAPEST_NAME, name);
			tell(t, b.data, !*is);
		}
	}
	buf_free(&b);
}

static void on_replace(void *arg, const struct snap *old,
		       const struct snap *fresh)
{
	struct tree *t = arg;
	atomic_fetch_add(&t->generation, 1);
	switch (fresh->kind) {
	case SNAP_OFFERS:
		diff_offers(t, old, fresh);
		break;
	case SNAP_PODS:
	case SNAP_HISTORY:
		diff_pods(t, old, fresh);
		break;
	default:
		tell(t, "/balance", false);
		break;
	}
}

void tree_set_changed(struct tree *t, tree_changed_fn fn, void *arg)
{
	t->changed = fn;
	t->changed_arg = arg;
	cache_set_replace_hook(t->o.cache, fn ? on_replace : NULL, t);
}

unsigned long tree_generation(struct tree *t)
{
	return atomic_load(&t->generation);
}

bool tree_volatile(const struct node *n)
{
	if (n->type != N_FILE)
		return false;
	const struct file_def *f = n->file;
	if (f->flags & F_STREAM)
		return false; /* size 0 whatever they hold */
	if (n->dir == D_JOB || n->dir == D_HJOB)
		return true; /* a job runs, ends, grows its output */
	if (f->needs && !n->snap)
		return true; /* never fetched: its size is not known */
	/* Files rendered from more than their object's snapshot. */
	return f->render == r_pod_cost || f->render == r_pod_offer ||
	       f->render == r_config || f->render == r_log ||
	       f->render == r_stats || f->render == r_guards ||
	       f->render == r_deadline || f->render == r_idle ||
	       f->render == r_max_cost || f->render == r_lease;
}

bool tree_cacheable(const struct node *n)
{
	if (n->type != N_FILE || n->file->hooks || file_writable(n->file) ||
	    (n->file->flags & (F_STREAM | F_WRITE_ONLY | F_OWNER)))
		return false;
	if (n->dir != D_OFFER && n->dir != D_POD && n->dir != D_HIST)
		return false;
	return !tree_volatile(n);
}

void tree_changed_all(struct tree *t)
{
	if (!t->changed)
		return;
	atomic_fetch_add(&t->generation, 1);
	static const char *const tops[] = {"/availability", ("/" CHEAPEST_NAME),
					   "/pods", "/history"};
	for (size_t i = 0; i < sizeof tops / sizeof *tops; i++)
		tell(t, tops[i], true);
	for (const struct file_def *f = root_files; f->name; f++) {
		char path[64];
		snprintf(path, sizeof path, "/%s", f->name);
		tell(t, path, false);
	}
	for (int k = 0; k < SNAP_KINDS; k++) {
		struct snap *s;
		if (k == SNAP_WALLET ||
		    cache_get(t->o.cache, (enum snap_kind)k, CACHE_HELD, &s))
			continue;
		if (k == SNAP_OFFERS) {
			/* Every name as gone: an empty listing as the new. */
			diff_offers(t, s, NULL);
		} else {
			bool hist = k == SNAP_HISTORY;
			for (size_t i = 0; i < snap_n_pods(s); i++)
				tell_pod(t, hist ? "/history" : "/pods",
					 hist ? D_HIST : D_POD,
					 snap_pod_at(s, i), true);
		}
		snap_put(s);
	}
}
