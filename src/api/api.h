/* api.h — the Prime Intellect endpoints primefs reads (PRIME_API.md 4, 5,
 * 7.1), with every page fetched: availability pages until totalCount,
 * pod pages until total_count (without one, or with 0, until a page
 * shorter than its limit), and a stop on an empty page whatever the
 * counts claim (a loop that never ends is the CLI's own bug, not ours).
 * Each returns 0 or -errno, having logged the reason. */
#ifndef PRIMEFS_API_H
#define PRIMEFS_API_H

#include "http.h"
#include "model.h"

#define API_PAGE_SIZE 100
#define API_MAX_PAGES 2000

struct api {
	struct http_client *http;
	const char *team_id;
	struct budget *budget; /* the one http uses; NULL: no budget */
};

struct offer_list {
	struct offer *v;
	size_t n;
};

struct pod_list {
	struct pod *v;
	size_t n;
};

int api_list_offers(struct api *a, struct offer_list *out);
void offer_list_free(struct offer_list *l);
/* history=false: GET /pods; true: GET /pods/history. */
int api_list_pods(struct api *a, bool history, struct pod_list *out);
void pod_list_free(struct pod_list *l);
/* GET /pods/status?pod_ids=..., one call for the n pods: the items as
 * pods (id, status, installation, sshConnection, ip); a pod the answer
 * does not name, or names DELETING or TERMINATED, is not in *out. */
int api_pods_status(struct api *a, const char *const *ids, size_t n,
		    struct pod_list *out);
/* GET /pods/{id}: 0 and *out (a live pod), 1 when the API shows it
 * DELETING or TERMINATED, -ENOENT on 404 (neither logged: they are
 * answers), else -errno (logged). */
int api_get_pod(struct api *a, const char *id, struct pod *out);
/* The wallet, with its billing rows paged back (newest first, as many
 * pages as it takes) until they are older than `since` (the oldest pod
 * they could bill; -1: one page). When a page fails (or -1 left rows
 * unread), what was read is kept and out->unread_until says how far back
 * it is complete. */
int api_get_wallet(struct api *a, time_t since, struct wallet *out);

/* GET /pods/{id}/log?tail=N: the pod's log as text appended to out (see
 * api_log_text). */
int api_pod_log(struct api *a, const char *id, int tail, struct buf *out);
/* The log answer's shape is not documented: a string is shown as it is, a
 * list one item per line, an object by its list field (`logs`, ...) one
 * item per line; a body that is not JSON as it is. Ends with a newline
 * unless empty. */
void api_log_text(const char *body, size_t len, struct buf *out);

/* Parses a 2xx body that must be a JSON object; NULL (and a log line) if it
 * is not. */
json_object *api_parse_object(const char *what, const struct http_resp *r);

#endif
