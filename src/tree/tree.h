/* tree.h — DESIGN.md's tree, written once as tables: the kinds of
 * directory, the files each holds and a render function per value file.
 * It resolves paths to nodes, lists directories and renders files from the
 * cache's snapshots; it knows nothing of FUSE, so unit tests and the FUSE
 * layer share it. */
#ifndef PRIMEFS_TREE_H
#define PRIMEFS_TREE_H

#include <sys/types.h>

#include "cache.h"

enum dir_kind {
	D_ROOT,
	D_AVAIL,
	D_TYPE,
	D_OFFER,
	D_PODS,
	D_POD,
	D_HISTORY,
	D_HIST,
	D_KEYS, /* ssh_keys/: a file per key, `primary` a link (keyfiles.h) */
	D_PLAN, /* plan/: any name resolves to its dry run, none listed */
	D_CHEAPEST, /* cheapest/: a link per type with a rentable offer */
	D_JOBS,	    /* pods/<p>/jobs/: a directory per job, and `latest` */
	D_JOB,	    /* pods/<p>/jobs/<job>/: its cmd, out, exit, ... */
	D_HJOBS,    /* history/<p>/jobs/: the same, read-only */
	D_HJOB,
	D_NODES,   /* pods/<p>/nodes/ of a multi-node pod: 0 1 ... and all */
	D_NODE,	   /* nodes/<n>/: ip ssh run exit jobs/ (its pod_id: the node
		    * key, nodes.h) */
	D_NODEALL, /* nodes/all/: run and exit on every node */
	D_HNODES,  /* history/<p>/nodes/: the nodes that ran jobs */
	D_HNODE,   /* history/<p>/nodes/<n>/: its jobs/, read-only */
	D_FILES,   /* history/<p>/files/ and every directory under it */
	D_PODFS,   /* pods/<p>/.fs and .home: the pod's files (podfiles.h) */
	D_DISKS,   /* disks/: a directory per disk (disks.h) */
	D_DISK,	   /* disks/<disk>/ */
	D_DOFFERS, /* disk_offers/: a directory per disk offer */
	D_DOFFER,  /* disk_offers/<offer>/ */
	D_HDISK,   /* history/<disk>/: a deleted disk (no jobs/) */
	D_KINDS
};

enum node_type { N_DIR, N_FILE, N_LINK };

struct tree;

/* What a file's render function gets: the tree, and the object the file
 * belongs to (an offer, a pod, the wallet snapshot, or NULL). */
typedef int (*render_fn)(struct tree *t, const void *obj, struct buf *out);
/* What a write to a writable file does with what was written; pod_id is
 * the id of the pod the file belongs to (NULL outside pods). */
typedef int (*store_fn)(struct tree *t, const char *pod_id, const char *data,
			size_t len);
/* What can be judged of a whole-file write before close: the content so
 * far, and where this write began. 0, or -errno (logged) to fail the
 * write() itself, as shells ignore close errors. */
typedef int (*check_fn)(struct tree *t, const char *data, size_t len,
			size_t from);

enum file_flags {
	F_STREAM = 1, /* size 0, read until end of file (run, exit, log) */
	F_WRITE_ONLY = 2,
	F_PER_WRITE = 4, /* store each write() (commands), not the whole file */
	F_LIVE = 32,	 /* only in live pods, not in history */
	F_OWNER = 64,	 /* the mounting user's alone, though read-only */
	F_LEASE = 128,	 /* a pod's lease: held while open for writing */
	/* Stored at the write() that ends a line too, so that what the store
	 * refuses (EINVAL: `echo 2hours > deadline`) or cannot keep (ENOSPC)
	 * fails that write: bash's builtin echo ignores the close (the guards'
	 * values). Again at close if written since. */
	F_STORE_LINE = 256,
};

struct node;
struct job;

/* An open file as its hooks see it: FUSE-free, so that the tree's special
 * files (run, exit, the job files) are written, and can be tested, without
 * a mount. The FUSE layer fills everything but priv. */
struct tree_handle {
	struct tree *tree;
	const char *path;   /* as opened */
	const char *pod_id; /* the pod the file belongs to, or NULL */
	const char *mnt;    /* the mount point (absolute, physical) or NULL */
	pid_t pid;	    /* the opener (a thread), 0 if unknown */
	int acc;	    /* O_RDONLY, O_WRONLY or O_RDWR */
	bool nonblock;	    /* O_NONBLOCK: a read that would wait: -EAGAIN */
	/* Whether the caller gave up (Ctrl-C): every wait asks it. */
	bool (*interrupted)(void *arg);
	void *interrupted_arg;
	/* Called (from any thread, no lock of the hooks' held) when what a
	 * poll with `arm` said may have changed; never after release. */
	void (*wake)(void *arg);
	void *wake_arg;
	void *priv; /* the hooks' own state */
};

/* A file that is more than a value rendered at open: its hooks serve
 * every call on its handles. Any may be NULL (that call: the default). */
struct file_hooks {
	/* 0 or -errno (then release is not called). */
	int (*open)(struct tree_handle *h, const struct node *n);
	/* Bytes read (0: end of file) or -errno; may wait (interruptibly). */
	int (*read)(struct tree_handle *h, char *out, size_t size, off_t off);
	/* NULL: the file is read-only. Bytes taken or -errno. */
	int (*write)(struct tree_handle *h, const char *data, size_t size,
		     off_t off);
	/* One close() of the open (a FLUSH: by thread pid, 0 if unknown); its
	 * result is that close's. Others may still hold the open. */
	int (*flush)(struct tree_handle *h, pid_t pid);
	/* Whether a read would return now without waiting; with `arm`, wake
	 * is called once that may have changed. */
	bool (*poll)(struct tree_handle *h, bool arm);
	/* The last call on a handle: after it, wake is not called. */
	void (*release)(struct tree_handle *h);
	/* st_size (NULL: 0 for streams, else the rendered length). */
	int (*size)(struct tree *t, const struct node *n, off_t *size);
};

#define NEEDS(kind) ((int)(kind) + 1)

struct file_def {
	const char *name;
	render_fn render; /* NULL: renders empty (files with hooks) */
	unsigned flags;
	int needs;	/* NEEDS(kind): the object is that snapshot; 0: none */
	store_fn store; /* NULL: read-only. Else called with the whole new
			 * content when the writer closes (or each write()
			 * with F_PER_WRITE) */
	check_fn check; /* NULL: every write is taken until close */
	const struct file_hooks *hooks; /* NULL: render at open, store */
};

struct node {
	enum node_type type;
	enum dir_kind dir; /* the directory, or the one holding the file */
	const struct file_def *file;
	struct snap *snap; /* referenced; released by node_release */
	const struct gpu_type *gtype;
	const void *obj;    /* in a job's directory: its job */
	struct job *job;    /* a job's directory or file: referenced, released
			     * by node_release */
	const char *pod_id; /* a pod's directory or anything under it */
	char *rel; /* under history/<p>/files/: the path there (owned) */
	time_t mtime;
};

struct lifecycle;
struct template_store;
struct podlog;

struct tree_opts {
	struct cache *cache;
	struct template_store *tmpl;
	struct lifecycle *life;
	struct podlog *podlog; /* pods' log files; NULL: they read empty */
	struct guards *guards; /* pods' guard files; NULL: they read empty */
	struct runs *runs;     /* readiness of a pod for a job */
	struct jobs *jobs;     /* run, exit and jobs/; NULL: they read empty */
	struct collect *collect; /* collect, history/<p>/files/; or NULL */
};

struct runs;
struct jobs;

struct tree *tree_new(const struct tree_opts *o);
void tree_free(struct tree *t);
struct cache *tree_cache(struct tree *t);
struct runs *tree_runs(struct tree *t);
struct jobs *tree_jobs(struct tree *t);

/* 0 and a node to release, or -errno. */
int tree_resolve(struct tree *t, const char *path, struct node *n);
void node_release(struct node *n);

/* The directory at path with the listing its entries come from held in
 * the node, so that tree_list and tree_child answer from one listing. */
int tree_resolve_dir(struct tree *t, const char *path, struct node *n);
/* The entry `name` of directory node `dir` (not changed): 0 and a node to
 * release, or -errno. */
int tree_child(struct tree *t, const struct node *dir, const char *name,
	       struct node *out);

/* Calls add for every entry of a directory node (not "." or ".."). */
typedef int (*add_fn)(void *ctx, const char *name);
int tree_list(struct tree *t, const struct node *n, add_fn add, void *ctx);

/* A file's whole content as of now. */
int tree_render(struct tree *t, const struct node *n, struct buf *out);
/* The same from what is held, for a size (getattr, a listing): never waits
 * for a listing other than the node's own that was never fetched
 * (balance's and cost's wallet, offer's offers): -EAGAIN, the size is not
 * known (those files are volatile: tree_volatile). */
int tree_render_held(struct tree *t, const struct node *n, struct buf *out);
int tree_readlink(struct tree *t, const struct node *n, struct buf *out);
mode_t node_mode(const struct node *n);

/* A pod's lease opened for writing (hold) or such a handle closed. */
void tree_lease(struct tree *t, const char *pod_id, bool hold);

/* In ssh_keys/ (keyfiles.h): a new file (create), a link, a link renamed
 * over `primary`, a key removed. 0 or -errno (EPERM elsewhere). */
int tree_key_create(struct tree *t, const char *path);
int tree_symlink(struct tree *t, const char *target, const char *path);
int tree_rename(struct tree *t, const char *from, const char *to);
int tree_unlink(struct tree *t, const char *path);

/* mkdir and rmdir of a path: 0 or -errno. */
int tree_mkdir(struct tree *t, const char *path);
int tree_rmdir(struct tree *t, const char *path);

/* Kernel caching (fs.c): whoever keeps copies of what the tree shows is
 * told which paths may now show something else. `gone`: the name may no
 * longer exist (its directory entry must go, not only its attributes).
 * Called from the thread that made the change (a fetch thread, or the
 * request that made it), with no lock held; the callback must not block. */
typedef void (*tree_changed_fn)(void *arg, const char *path, bool gone);
/* Set once, before the tree is shared between threads; it hooks the
 * cache's replace hook (cache_set_replace_hook). */
void tree_set_changed(struct tree *t, tree_changed_fn fn, void *arg);
/* Bumped before the paths of each change are told: a request that saw it
 * move while it answered may have answered from the older data. */
unsigned long tree_generation(struct tree *t);
/* Whether a node's attributes may change with no snapshot changing (cost
 * grows with time, log and stats with use, config can be edited on disk,
 * guards move by their timer), or are not known yet (balance before the
 * wallet was ever fetched): not to be cached by the kernel. */
bool tree_volatile(const struct node *n);
/* Whether the kernel may keep a file's content (keep_cache) until it is
 * told the path changed: a value of an immutable snapshot (an offer's or
 * a pod's value files that are not volatile), never a stream, a writable
 * file or one with hooks. */
bool tree_cacheable(const struct node *n);
/* Whether the file can be opened for writing. */
bool file_writable(const struct file_def *f);
/* Every path the held snapshots show, and every top directory, told as
 * gone (after `refresh`). */
void tree_changed_all(struct tree *t);

/* The jobs of the pod with this id changed (a job made, started or
 * removed): the kernel is told that its jobs/ listing and jobs/latest
 * (and, for `name` removed, jobs/<name>) may now show something else. */
void tree_jobs_changed(struct tree *t, const char *pod_id, const char *gone);

/* Names that shells, prompts and file managers probe: answered from what
 * is cached, never fetched for. */
bool probe_name(const char *name);

#endif
