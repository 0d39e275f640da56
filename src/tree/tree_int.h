/* tree_int.h — what the files of the tree share: the tree, the tables
 * (tree.c), the renderers and stores the tables name (tree_values.c,
 * tree_writes.c) and the telling of changes (tree_changes.c); tree_walk.c
 * walks the tables. Nothing outside src/tree includes it. */
#ifndef PRIMEFS_TREE_INT_H
#define PRIMEFS_TREE_INT_H

#include <stdatomic.h>

#include "tree.h"

struct tree {
	struct tree_opts o;
	tree_changed_fn changed; /* may be NULL */
	void *changed_arg;
	atomic_ulong generation;
};

/* ---- the tables (tree.c) ---- */

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

extern const struct dir_def dirs[D_KINDS];
extern const struct file_def offer_files[], pod_files[], job_files[],
    hjob_files[], root_files[], node_files[], nodeall_files[], disk_files[],
    doffer_files[], hdisk_files[];
/* Whether a directory kind lists a pod's jobs. */
bool jobs_dir(enum dir_kind k);
/* History pods have the same files as live ones, but no run and exit. */
bool file_in(const struct file_def *f, enum dir_kind dir);
const struct file_def *find_file(const struct file_def *files,
				 enum dir_kind dir, const char *name);

/* ---- renderers and stores the tables name ---- */

#define TREE_RENDER(fn) int fn(struct tree *t, const void *obj, struct buf *out)
#define TREE_STORE(fn)                                                         \
	int fn(struct tree *t, const char *pod_id, const char *data, size_t len)

/* tree_values.c */
TREE_RENDER(r_offer_price);
TREE_RENDER(r_offer_stock);
TREE_RENDER(r_offer_provider);
TREE_RENDER(r_offer_data_center);
TREE_RENDER(r_offer_country);
TREE_RENDER(r_offer_region);
TREE_RENDER(r_offer_socket);
TREE_RENDER(r_offer_gpu_count);
TREE_RENDER(r_offer_gpu_memory);
TREE_RENDER(r_offer_vcpus);
TREE_RENDER(r_offer_memory);
TREE_RENDER(r_offer_disk);
TREE_RENDER(r_offer_cloud_id);
TREE_RENDER(r_offer_security);
TREE_RENDER(r_offer_prepaid);
TREE_RENDER(r_offer_spot);
TREE_RENDER(r_offer_images);
TREE_RENDER(r_offer_json);
TREE_RENDER(r_pod_id);
TREE_RENDER(r_pod_name);
TREE_RENDER(r_pod_status);
TREE_RENDER(r_pod_gpu_type);
TREE_RENDER(r_pod_provider);
TREE_RENDER(r_pod_image);
TREE_RENDER(r_pod_created);
TREE_RENDER(r_pod_gpu_count);
TREE_RENDER(r_pod_price);
TREE_RENDER(r_pod_progress);
TREE_RENDER(r_pod_cost);
TREE_RENDER(r_pod_ssh);
TREE_RENDER(r_pod_ip);
TREE_RENDER(r_pod_json);
TREE_RENDER(r_pod_log);
TREE_RENDER(r_pod_offer);
/* offer's render with the pods snapshot p is in (it keeps the answer),
 * the offers taken in mode (CACHE_HELD, none held: -EAGAIN). */
int pod_offer(struct tree *t, const struct snap *pods, const struct pod *p,
	      enum cache_mode mode, struct buf *out);
TREE_RENDER(r_job_state);
TREE_RENDER(r_job_started);
TREE_RENDER(r_job_ended);
TREE_RENDER(r_balance);
TREE_RENDER(r_config);
TREE_RENDER(r_log);
TREE_RENDER(r_stats);

/* tree_disks.c */
TREE_RENDER(r_disk_size);
TREE_RENDER(r_disk_pods);
TREE_RENDER(r_doffer_max_size);
TREE_RENDER(r_budget);

/* tree_writes.c */
TREE_RENDER(r_deadline);
TREE_RENDER(r_idle);
TREE_RENDER(r_max_cost);
TREE_RENDER(r_lease);
TREE_RENDER(r_guards);
TREE_STORE(w_deadline);
TREE_STORE(w_idle);
TREE_STORE(w_max_cost);
TREE_STORE(w_lease);
TREE_STORE(w_config);
TREE_STORE(w_ctl);
int c_config(struct tree *t, const char *data, size_t len, size_t from);

/* tree_nodes.c: nodes/ of a multi-node pod (nodes.h), and of one in
 * history. Whether the pod directory n shows `nodes` (two nodes or more;
 * in history: a node other than 0 has jobs on record); from nodes/ into its
 * entry `name`; its entries (`all` comes from the table); node files'
 * values (r_node_value is their table mark: nodes_render renders them). */
bool nodes_shown(struct tree *t, const struct node *n);
int nodes_step(struct tree *t, struct node *n, const char *name);
int nodes_list(struct tree *t, const struct node *n, add_fn add, void *ctx);
TREE_RENDER(r_node_value);
int nodes_render(struct tree *t, const struct node *n, struct buf *out);
extern const struct file_hooks nodeall_run_hooks, nodeall_exit_hooks;
/* collected.c: pods/<p>/collect, and history/<p>/files/ (D_FILES) */
TREE_RENDER(r_collect);
TREE_STORE(w_collect);
int c_collect(struct tree *t, const char *data, size_t len, size_t from);
int step_files(struct tree *t, struct node *n, const char *name);
int list_files(struct tree *t, const struct node *n, add_fn add, void *ctx);

/* ---- telling of changes (tree_changes.c) ---- */

/* path may now show something else (gone: the name may be gone). */
void tell(struct tree *t, const char *path, bool gone);
/* A pod's directory and files, under its name and its id. */
void tell_pod_dirs(struct tree *t, const char *top, const char *dir,
		   const char *id);

#endif
