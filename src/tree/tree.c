/* tree.c — DESIGN.md's tree, written once as tables: the files of each
 * kind of directory (their names, renderers, stores and flags) and the
 * directories themselves; what a file's flags mean for modes, for the
 * kernel's caches (tree_volatile, tree_cacheable); the tree object. The
 * walker (tree_walk.c), the renderers (tree_values.c), the stores
 * (tree_writes.c) and the telling of changes (tree_changes.c) only read
 * these tables. */
#include "tree_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobfiles.h"
#include "jobs.h"
#include "keyfiles.h"
#include "naming.h"

const struct file_def offer_files[] = {
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

const struct file_def pod_files[] = {
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
     .flags = F_LIVE | F_STORE_LINE,
     .store = w_deadline},
    {.name = "idle",
     .render = r_idle,
     .flags = F_LIVE | F_STORE_LINE,
     .store = w_idle},
    {.name = "max_cost",
     .render = r_max_cost,
     .flags = F_LIVE | F_STORE_LINE,
     .store = w_max_cost},
    {.name = "lease",
     .render = r_lease,
     .flags = F_LIVE | F_LEASE | F_STORE_LINE,
     .store = w_lease},
    {.name = "guards", .render = r_guards, .flags = F_LIVE | F_OWNER},
    {.name = "collect",
     .render = r_collect,
     .flags = F_LIVE,
     .store = w_collect,
     .check = c_collect},
    {.name = NULL},
};

/* A live pod's job; all of it the owner's (job output, its script). */
const struct file_def job_files[] = {
    {.name = "cmd", .hooks = &cmd_hooks},
    {.name = "out", .hooks = &out_hooks},
    {.name = "exit", .flags = F_STREAM, .hooks = &exit_hooks},
    {.name = "state", .render = r_job_state, .flags = F_OWNER},
    {.name = "started", .render = r_job_started, .flags = F_OWNER},
    {.name = "ended", .render = r_job_ended, .flags = F_OWNER},
    {.name = "follow", .flags = F_STREAM, .hooks = &follow_hooks},
    {.name = "signal", .hooks = &signal_hooks},
    {.name = NULL},
};

/* A job of a pod in history: the same, read-only. */
const struct file_def hjob_files[] = {
    {.name = "cmd", .hooks = &cmd_ro_hooks},
    {.name = "out", .hooks = &out_hooks},
    {.name = "exit", .flags = F_STREAM, .hooks = &exit_hooks},
    {.name = "state", .render = r_job_state, .flags = F_OWNER},
    {.name = "started", .render = r_job_started, .flags = F_OWNER},
    {.name = "ended", .render = r_job_ended, .flags = F_OWNER},
    {.name = "follow", .flags = F_STREAM, .hooks = &follow_hooks},
    {.name = NULL},
};

/* nodes/<n>/ of a multi-node pod: its run, exit and jobs/ are the node's
 * (by its node key, nodes.h); ip and ssh its entries of the pod's lists.
 * (fs and home, links to .fs and .home: the node's files, podfiles.h.) */
const struct file_def node_files[] = {
    {.name = "ip", .render = r_node_value},
    {.name = "ssh", .render = r_node_value},
    {.name = "run", .flags = F_STREAM | F_LIVE, .hooks = &run_hooks},
    {.name = "exit", .flags = F_STREAM | F_LIVE, .hooks = &exit_hooks},
    {.name = NULL},
};

/* nodes/all/: one script on every node; output and status of them all. */
const struct file_def nodeall_files[] = {
    {.name = "run", .flags = F_STREAM | F_LIVE, .hooks = &nodeall_run_hooks},
    {.name = "exit", .flags = F_STREAM | F_LIVE, .hooks = &nodeall_exit_hooks},
    {.name = NULL},
};

const struct file_def root_files[] = {
    {.name = "balance", .render = r_balance, .needs = NEEDS(SNAP_WALLET)},
    {.name = "config",
     .render = r_config,
     .store = w_config,
     .check = c_config},
    {.name = "log", .render = r_log, .flags = F_OWNER},
    {.name = "stats", .render = r_stats, .flags = F_OWNER},
    {.name = "ctl", .flags = F_WRITE_ONLY | F_PER_WRITE, .store = w_ctl},
    {.name = "budget", .render = r_budget, .flags = F_OWNER},
    {.name = NULL},
};

/* disks/<disk>/: a disk is kept as a pod (disks.h), so the pods'
 * renderers serve what the two share. */
const struct file_def disk_files[] = {
    {.name = "id", .render = r_pod_id},
    {.name = "name", .render = r_pod_name},
    {.name = "size", .render = r_disk_size},
    {.name = "status", .render = r_pod_status},
    {.name = "price", .render = r_pod_price},
    {.name = "cost", .render = r_pod_cost},
    {.name = "pods", .render = r_disk_pods},
    {.name = "created", .render = r_pod_created},
    {.name = "json", .render = r_pod_json},
    {.name = NULL},
};

/* history/<disk>/: a deleted disk, as the history row gives it. */
const struct file_def hdisk_files[] = {
    {.name = "id", .render = r_pod_id},
    {.name = "name", .render = r_pod_name},
    {.name = "size", .render = r_disk_size},
    {.name = "status", .render = r_pod_status},
    {.name = "price", .render = r_pod_price},
    {.name = "cost", .render = r_pod_cost},
    {.name = "created", .render = r_pod_created},
    {.name = "json", .render = r_pod_json},
    {.name = NULL},
};

/* disk_offers/<offer>/: price is USD per GB-hour. */
const struct file_def doffer_files[] = {
    {.name = "price", .render = r_offer_price},
    {.name = "provider", .render = r_offer_provider},
    {.name = "data_center", .render = r_offer_data_center},
    {.name = "country", .render = r_offer_country},
    {.name = "stock", .render = r_offer_stock},
    {.name = "max_size", .render = r_doffer_max_size},
    {.name = "json", .render = r_offer_json},
    {.name = NULL},
};

static const struct file_def no_files[] = {{.name = NULL}};

/* ---- directories ---- */

static const struct subdir root_subdirs[] = {
    {"availability", D_AVAIL}, {CHEAPEST_NAME, D_CHEAPEST}, {"pods", D_PODS},
    {"history", D_HISTORY},    {"ssh_keys", D_KEYS},	    {"plan", D_PLAN},
    {"disks", D_DISKS},	       {"disk_offers", D_DOFFERS},  {NULL, D_ROOT}};
static const struct subdir pod_subdirs[] = {
    {"jobs", D_JOBS}, {"nodes", D_NODES}, {NULL, D_ROOT}};
static const struct subdir node_subdirs[] = {{"jobs", D_JOBS}, {NULL, D_ROOT}};
static const struct subdir nodes_subdirs[] = {{"all", D_NODEALL},
					      {NULL, D_ROOT}};
static const struct subdir hist_subdirs[] = {
    {"jobs", D_HJOBS}, {"files", D_FILES}, {"nodes", D_HNODES}, {NULL, D_ROOT}};
static const struct subdir hnode_subdirs[] = {{"jobs", D_HJOBS},
					      {NULL, D_ROOT}};
static const struct subdir no_subdirs[] = {{NULL, D_ROOT}};

const struct dir_def dirs[D_KINDS] = {
    [D_ROOT] = {root_subdirs, root_files, -1, D_ROOT},
    [D_AVAIL] = {no_subdirs, no_files, SNAP_OFFERS, D_TYPE},
    [D_TYPE] = {no_subdirs, no_files, SNAP_OFFERS, D_OFFER},
    [D_OFFER] = {no_subdirs, offer_files, -1, D_OFFER},
    [D_PODS] = {no_subdirs, no_files, SNAP_PODS, D_POD},
    [D_POD] = {pod_subdirs, pod_files, -1, D_POD},
    [D_HISTORY] = {no_subdirs, no_files, SNAP_HISTORY, D_HIST},
    [D_HIST] = {hist_subdirs, pod_files, -1, D_HIST},
    [D_KEYS] = {no_subdirs, no_files, SNAP_KEYS, D_KEYS},
    [D_PLAN] = {no_subdirs, no_files, -1, D_PLAN},
    [D_CHEAPEST] = {no_subdirs, no_files, SNAP_OFFERS, D_CHEAPEST},
    /* Their entries come from the job store (jobs_dir()), not a listing. */
    [D_JOBS] = {no_subdirs, no_files, -1, D_JOB},
    [D_JOB] = {no_subdirs, job_files, -1, D_JOB},
    [D_HJOBS] = {no_subdirs, no_files, -1, D_HJOB},
    [D_HJOB] = {no_subdirs, hjob_files, -1, D_HJOB},
    /* Their entries come from the pod's node count (tree_nodes.c). */
    [D_NODES] = {nodes_subdirs, no_files, -1, D_NODE},
    [D_NODE] = {node_subdirs, node_files, -1, D_NODE},
    [D_NODEALL] = {no_subdirs, nodeall_files, -1, D_NODEALL},
    [D_HNODES] = {no_subdirs, no_files, -1, D_HNODE},
    [D_HNODE] = {hnode_subdirs, no_files, -1, D_HNODE},
    /* Their entries come from the state directory (collected.c). */
    [D_FILES] = {no_subdirs, no_files, -1, D_FILES},
    /* Only the directory itself: what is under it is podfiles.h's. */
    [D_PODFS] = {no_subdirs, no_files, -1, D_PODFS},
    [D_DISKS] = {no_subdirs, no_files, SNAP_DISKS, D_DISK},
    [D_DISK] = {no_subdirs, disk_files, -1, D_DISK},
    [D_DOFFERS] = {no_subdirs, no_files, SNAP_DISK_OFFERS, D_DOFFER},
    [D_DOFFER] = {no_subdirs, doffer_files, -1, D_DOFFER},
    [D_HDISK] = {no_subdirs, hdisk_files, -1, D_HDISK},
};

/* Whether a directory kind lists a pod's jobs. */
bool jobs_dir(enum dir_kind k)
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
	keys_free();
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
	free(n->rel);
	n->rel = NULL;
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
bool file_in(const struct file_def *f, enum dir_kind dir)
{
	return !(f->flags & F_LIVE) || dir != D_HIST;
}

const struct file_def *find_file(const struct file_def *files,
				 enum dir_kind dir, const char *name)
{
	for (; files->name; files++)
		if (!strcmp(files->name, name) && file_in(files, dir))
			return files;
	return NULL;
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
	case N_DIR: /* a pod's files are the mounting user's alone */
		return S_IFDIR | (n->dir == D_PODFS ? 0700 : 0755);
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
	       f->render == r_max_cost || f->render == r_lease ||
	       f->render == r_collect || f->render == r_disk_pods ||
	       f->render == r_budget;
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
