/* template.h — the pod template mkdir uses (DESIGN.md "The config
 * template"): `key = value` lines, `#` comments, `[glob]` sections that
 * apply to pods whose name matches (later wins), parsed with inih. A new
 * template is checked whole before it replaces the old one, then saved
 * atomically (temp file + rename) and used at once. */
#ifndef PRIMEFS_TEMPLATE_H
#define PRIMEFS_TEMPLATE_H

#include <pthread.h>

#include "model.h"

#define TEMPLATE_DEFAULT_MAX_PODS 4
#define TEMPLATE_MAX_SIZE	  (256 * 1024)

struct tmpl_entry {
	char *section; /* "" for the top, else the glob */
	char *key;
	char *value;
};

struct template
{
	struct tmpl_entry *v;
	size_t n;
};

struct env_var {
	char *key, *value;
};

/* The template resolved for one pod name. Strings are NULL when unset. */
struct pod_spec {
	char *gpu_type, *socket, *provider, *data_center, *security, *image;
	char *custom_template_id, *team_id;
	struct strlist regions;
	long gpu_count, disk_size, vcpus, memory; /* 0: unset */
	double max_price;			  /* < 0: unset */
	int spot;				  /* -1 unset, 0, 1 */
	long max_pods;
	struct env_var *env;
	size_t n_env;
};

/* 0, or -EINVAL with "line N: reason" in err. */
int template_parse(const char *text, struct template *out, struct buf *err);
void template_free(struct template *t);
void template_resolve(const struct template *t, const char *pod_name,
		      struct pod_spec *out);
void pod_spec_free(struct pod_spec *s);

/* The template on disk and in memory, shared by every FUSE thread. */
struct template_store {
	pthread_mutex_t mu;
	char *path;
	struct template current;
};

/* Reads the file if it exists; a bad one is logged and an empty template
 * used until a good one is written. */
void template_store_init(struct template_store *s, const char *path);
void template_store_destroy(struct template_store *s);
/* Checks text and, when good, saves and uses it: 0 or -errno (logged). */
int template_store_replace(struct template_store *s, const char *text,
			   size_t len);
void template_store_resolve(struct template_store *s, const char *pod_name,
			    struct pod_spec *out);

#endif
