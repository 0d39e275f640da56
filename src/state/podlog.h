/* podlog.h — the pods' own logs (`pods/<pod>/log`, GET /pods/{id}/log):
 * fetched when the file is opened, kept for the pods' freshness window, and
 * the one read that costs an API call, so fetches are rate-limited by a
 * token bucket (a burst, then a few a minute). Past the limit a reader gets
 * the last fetched text, or an empty file: a `grep -r` over a thousand pods
 * spends the burst, not the hour's API budget. */
#ifndef PRIMEFS_PODLOG_H
#define PRIMEFS_PODLOG_H

#include <pthread.h>

#include "api.h"

/* A token bucket: `burst` tokens at most, refilled at `rate` a second. */
struct bucket {
	double tokens, burst, rate, last;
};
void bucket_init(struct bucket *b, double burst, double rate, double now);
/* Takes one token if there is one. */
bool bucket_take(struct bucket *b, double now);

#define PODLOG_BURST	  10
#define PODLOG_PER_MINUTE 3
#define PODLOG_TAIL	  1000
#define PODLOG_MAX_PODS	  1024

struct podlog_opts {
	double ttl;	   /* seconds a fetched log is served as fresh */
	double burst;	   /* 0: PODLOG_BURST */
	double per_minute; /* 0: PODLOG_PER_MINUTE */
};

struct podlog;

struct podlog *podlog_new(struct api *api, const struct podlog_opts *o);
void podlog_free(struct podlog *pl);

/* Appends the log of pod `id` to out: fetched when the held text is older
 * than the ttl and the bucket allows, else the held text (or nothing). A
 * pod the API knows no log of reads empty. 0 or -errno (a failed fetch
 * with nothing held). */
int podlog_read(struct podlog *pl, const char *id, struct buf *out);
/* `refresh` in ctl: every held log is stale (still served past the limit). */
void podlog_refresh(struct podlog *pl);

#endif
