/* http.h — the one way primefs talks HTTP(S): libcurl with TLS always
 * verified, a deadline on every call (retries included), CURLOPT_NOSIGNAL
 * (FUSE is multithreaded), one easy handle per thread with its own
 * connections, sharing DNS and TLS sessions, and retries with backoff and
 * jitter for GET and DELETE, honouring Retry-After on 429 and 503. Every
 * call goes through the API's call budget (budget.h): a read it refuses is
 * not sent; a POST or DELETE held by a 429's Retry-After waits it out (up
 * to HTTP_HOLD_WAIT, while its caller has not given up), then goes with
 * its full time limit. A 429 with Retry-After sets that hold. */
#ifndef PRIMEFS_HTTP_H
#define PRIMEFS_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>

#include "budget.h"
#include "util.h"

#define HTTP_MAX_BODY (64u << 20)
/* The longest a POST or DELETE waits for a Retry-After hold to end; a
 * longer hold fails it at once (EAGAIN, logged). */
#define HTTP_HOLD_WAIT 120.0

struct http_opts {
	const char *base_url;  /* scheme://host[:port], without /api/v1 */
	const char *api_key;   /* may be NULL; must outlive the client */
	const char *cafile;    /* may be NULL: the system's CAs */
	double timeout;	       /* seconds for one call, retries included */
	int max_attempts;      /* for GET; 0 means the default (4) */
	struct budget *budget; /* may be NULL: no budget */
};

struct http_resp {
	long status; /* 0 when no HTTP answer came */
	CURLcode curl;
	char error[CURL_ERROR_SIZE];
	struct buf body;
	double retry_after; /* seconds; < 0 when the server named none */
	bool too_large;
	bool no_key; /* nothing was sent: no API key is configured */
	/* Not sent: the budget's verdict (BUDGET_HELD, BUDGET_SPENT) and how
	 * long it stands; or the caller gave up waiting out a hold. */
	enum budget_verdict held;
	double held_for;
	bool interrupted;
	int attempts;
};

struct http_client;

struct http_client *http_new(const struct http_opts *o);
void http_free(struct http_client *c);
/* The calling thread is done with c: its connection cache and handle are
 * freed now (a thread that nobody joins calls this before it signals its
 * end; otherwise the handle goes when the thread exits). */
void http_thread_done(struct http_client *c);
/* How a caller says it gave up (FUSE: the request was interrupted), for a
 * POST or DELETE waiting out a hold. Set once, at start-up. */
void http_set_interrupt(struct http_client *c, bool (*interrupted)(void *arg),
			void *arg);

void http_resp_init(struct http_resp *r);
void http_resp_free(struct http_resp *r);

/* Sends METHOD <base>/api/v1<path> (path carries the query). `endpoint`
 * names it in `stats`. Returns true for a 2xx answer; anything else is
 * described in r (see errmap.h). */
bool http_call(struct http_client *c, const char *method, const char *path,
	       const char *json_body, const char *endpoint,
	       struct http_resp *r);
/* The same with a time limit of its own instead of the client's (a pod's
 * create request, which is never re-sent, may take longer than a
 * listing). */
bool http_call_timeout(struct http_client *c, const char *method,
		       const char *path, const char *json_body,
		       const char *endpoint, double timeout,
		       struct http_resp *r);

/* Appends s percent-encoded (all but A-Z a-z 0-9 - . _ ~), for a path
 * segment or a query value. */
void http_escape_into(struct buf *b, const char *s);

#endif
