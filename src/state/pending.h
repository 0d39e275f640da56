/* pending.h — requests in flight: the one owner of each pod this mount
 * asked for that no listing has shown yet (DESIGN.md, "Never twice" and "A
 * pod whose request is in flight..."). FUSE-free.
 *
 * The placeholder invariant (written here once):
 * - A pending create is a record kept in the state directory,
 *   DIR/pending/<name> (JSON, mode 0600, written to a temp file, fsynced,
 *   renamed), from BEFORE its create request is sent until it is settled.
 *   A create request is sent once and never again, across restarts too:
 *   the record keeps the name taken (EEXIST) and counted (max_pods).
 * - Until the create's answer gives an id, the pod is a placeholder: its id
 *   is none (its `id` file is an empty line). In a pods snapshot it is a
 *   pod named after the request, status PENDING, whose key (struct pod.id)
 *   is its name, so that it resolves and its files work. That key is never
 *   sent to the API: nothing terminates by it.
 * - Only two things settle a pending create: a listing that shows it (by
 *   the answer's id, else by its name), whenever that listing started; or
 *   a refusal from the API (nothing was sent, or a 4xx), which frees the
 *   name. A listing that lacks it settles nothing; a 404 for a placeholder
 *   settles nothing.
 * - It behaves as the pod it will become. Its guards (the template's, armed
 *   at mkdir, the deadline counting from the mkdir; and what is written to
 *   its guard files; and its lease) are guards.h's, kept under its key in
 *   the state directory there; they are re-keyed to the pod's id when the
 *   answer gives one or a listing settles it (the settle hook).
 * - A guard that falls due on a placeholder, and rmdir of a placeholder,
 *   make it unwanted (kept in the record, logged): it leaves pods/ but its
 *   name stays taken and counted until settled; the listing that shows the
 *   pod has it terminated at once, by its real id. So does a DELETE of an
 *   answered create that no listing shows yet when it gets a 404.
 * - At mount the records are read back: each is pending again (unwanted or
 *   not, with the answer's id if one had come) and settled as above.
 * - The offer chosen at mkdir is kept by pod id once the id is known
 *   (DIR/offers/<id>), for the pod's `offer` file. */
#ifndef PRIMEFS_PENDING_H
#define PRIMEFS_PENDING_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "util.h"

struct pending;

enum pending_state {
	PENDING_NONE,	     /* not pending (never, or settled) */
	PENDING_PLACEHOLDER, /* no id yet */
	PENDING_ANSWERED,    /* the create's answer gave its id */
	PENDING_UNWANTED,    /* a placeholder nobody wants any more */
	PENDING_SETTLED,     /* a listing showed it; its hook has not run */
};

/* What a listing settled, for the settle hook. */
struct pending_settled {
	const char *name;
	const char *id;	      /* the listed pod's */
	bool was_placeholder; /* its guards are still under its name */
	const char *unwanted; /* why it is not wanted, or NULL */
};

/* `dir` is the state directory (records in DIR/pending/, offers in
 * DIR/offers/) and dir_fd its checked descriptor (statedir.h: files 0600,
 * no link followed, records written with atomic_write_file), or NULL and
 * -1 to keep nothing on disk. Reads the records kept there; an unreadable
 * one is skipped with a line in `log`. */
struct pending *pending_new(const char *dir, int dir_fd);
void pending_free(struct pending *p);
/* Called by pending_settle for each pod a listing settled, with no lock
 * held; set once at start-up. */
void pending_set_hook(struct pending *p,
		      void (*fn)(void *arg, const struct pending_settled *s),
		      void *arg);

/* A new request for `name`, recorded before it is sent, with the offer
 * chosen ("<type>/<offer>", or NULL): 0, -EEXIST (one is pending), or the
 * -errno of writing the record (then nothing may be sent). */
int pending_add(struct pending *p, const char *name, const char *offer);
/* The create's answer (its pod, with an id): kept and shown. */
void pending_answered(struct pending *p, const char *name,
		      const struct pod *answer);
/* The API refused the request: forgotten, the name free. */
bool pending_drop(struct pending *p, const char *name);
/* Marks a placeholder unwanted (`why`: "rmdir", or the guard): true if it
 * was a placeholder. */
bool pending_unwanted(struct pending *p, const char *name, const char *why);
/* The same for a create answered with `id` that no listing shows yet, whose
 * DELETE found nothing (404 settles nothing): true if there was one. */
bool pending_unwanted_id(struct pending *p, const char *id, const char *why);
/* The pod with id `id` is known gone (its DELETE was confirmed): a pending
 * create answered with that id is forgotten (its offer record stays, for
 * history/, until it is OFFERS_KEEP_DAYS old at a mount). */
void pending_gone(struct pending *p, const char *id);

/* The state of the request for `key` (a name, or a placeholder's key);
 * when settled, *id (may be NULL) gets the listed pod's id (xstrdup). */
enum pending_state pending_state(struct pending *p, const char *key, char **id);
/* Requests not shown in pods/ (unwanted placeholders): for max_pods. */
size_t pending_hidden(struct pending *p);
size_t pending_count(struct pending *p);

/* The pod shown for `name` now (placeholder or answer), in *out: false if
 * nothing is shown for it. */
bool pending_pod(struct pending *p, const char *name, struct pod *out);
/* The overlay of a listing `l`: each request it shows is settled (queued
 * for pending_settle); the others that show are appended to l (which is
 * reallocated). Memory only: may be called under the cache's lock. */
void pending_overlay(struct pending *p, struct pod_list *l);
/* Runs the hook for what was settled, then forgets it (record removed,
 * offer kept by id). Call with no lock held. */
void pending_settle(struct pending *p);

/* The offer recorded for pod `id` ("<type>/<offer>"): true if one was. */
bool pending_offer(struct pending *p, const char *id, struct buf *out);

#endif
