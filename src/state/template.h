/* template.h — the pod template mkdir uses (DESIGN.md "The config
 * template"): `key = value` lines, `#` comments, `[glob]` sections that
 * apply to pods whose name matches (later wins), parsed with inih. A new
 * template is checked whole before it replaces the old one, then saved
 * atomically (temp file + rename) and used at once. */
#ifndef PRIMEFS_TEMPLATE_H
#define PRIMEFS_TEMPLATE_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

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
	char *offer; /* "<type>/<offer>": rent exactly that one */
	struct strlist regions;
	long gpu_count, disk_size, vcpus, memory; /* 0: unset */
	double max_price;			  /* < 0: unset */
	int spot, prepaid;			  /* -1 unset, 0, 1 */
	long max_pods;
	/* Guards, parsed and kept for the pod (seconds or USD; < 0: unset). */
	double deadline, idle, max_cost;
	/* What to bring back before the pod goes (collect.h), as written. */
	char *collect;
	/* Set when the template file on disk is bad: mkdir refuses, saying
	 * this, rather than rent from a template the user did not write. */
	char *invalid;
	struct env_var *env;
	size_t n_env;
};

/* 0, or -EINVAL with "line N: reason" in err. */
int template_parse(const char *text, struct template *out, struct buf *err);
/* What a write() of config can check before the file is complete: the
 * complete lines of `text` (up to its last newline) that end at or after
 * byte `from` (where the write began), each on its own. A line is
 * judged alone because a line that is bad alone (an unknown key, a bad
 * value, neither `key = value` nor a [section]) is bad in every template;
 * what needs the whole file is checked again at close. 0, or -EINVAL with
 * "line N: reason" in err. */
int template_check_lines(const char *text, size_t len, size_t from,
			 struct buf *err);
/* A duration as the guards take it: a non-negative number with s, m, h or
 * d, optionally after a '+' ("45s", "+90m", "2h", "1.5d"); seconds, or -1.
 */
double parse_duration(const char *v);
void template_free(struct template *t);
void template_resolve(const struct template *t, const char *pod_name,
		      struct pod_spec *out);
void pod_spec_free(struct pod_spec *s);

/* The template on disk and in memory, shared by every FUSE thread. */
struct template_store {
	pthread_mutex_t mu;
	char *path;
	struct template current;
	char *text;	      /* what current came from: what config shows */
	char *invalid;	      /* why the file on disk is refused, or NULL */
	struct timespec seen; /* the file's mtime when read */
	off_t seen_size;
	ino_t seen_ino;
};

/* Reads the file if it exists. The file is the one source of truth: when
 * it changes on disk, the next read of config or mkdir reads it again. A
 * bad file is logged, shown as it is in config, and refused by mkdir
 * (pod_spec.invalid) until a good one is written. */
void template_store_init(struct template_store *s, const char *path);
void template_store_destroy(struct template_store *s);
/* Checks text and, when good, saves and uses it: 0 or -errno (logged). */
int template_store_replace(struct template_store *s, const char *text,
			   size_t len);
void template_store_resolve(struct template_store *s, const char *pod_name,
			    struct pod_spec *out);
/* The value of `key` as the template gives it for pod `pod_name` (NULL:
 * the top-level value only): true and the value in out (replaced), or
 * false when unset. For keys that are not a pod_spec's (disks,
 * max_hourly, disk.*). */
bool template_store_get(struct template_store *s, const char *pod_name,
			const char *key, struct buf *out);
/* The text config shows: the file's content as mkdir uses it. */
void template_store_text(struct template_store *s, struct buf *out);

#endif
