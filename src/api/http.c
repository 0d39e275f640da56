/* http.c — see http.h. No lock is held while a request is on the wire: the
 * share handle's locks guard only libcurl's shared caches, in memory.
 *
 * What is shared. The share handle holds the DNS cache and TLS sessions,
 * which libcurl supports sharing between concurrent threads. It does not
 * hold connections: libcurl documents that sharing the connection cache
 * between concurrent threads is not supported (CURLSHOPT_SHARE,
 * CURL_LOCK_DATA_CONNECT), and FUSE runs up to 64 threads. Each thread's
 * easy handle (one per thread, kept in thread-specific data) keeps its own
 * connection cache instead, which survives curl_easy_reset: a thread
 * reuses its own keep-alive connection, a new thread resumes TLS from the
 * shared sessions. One multi handle on a thread of its own would share
 * connections too, but would add a hand-off and a wake-up per call for a
 * saving of a few idle sockets; per-thread caches need no new code.
 *
 * A POST never reuses a connection (see http_call). Retry-After comes from
 * libcurl (CURLINFO_RETRY_AFTER), which reads both seconds and HTTP-dates. */
#include "http.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct http_client {
	struct http_opts o;
	char *base_url, *cafile;
	const char *api_key; /* the caller's copy, kept out of core dumps */
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	pthread_key_t handle_key;
	bool (*interrupted)(void *arg);
	void *interrupted_arg;
};

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h;
	(void)a;
	struct http_client *c = u;
	pthread_mutex_lock(&c->locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	(void)h;
	struct http_client *c = u;
	pthread_mutex_unlock(&c->locks[d]);
}

static void handle_destroy(void *h)
{
	curl_easy_cleanup(h);
}

struct http_client *http_new(const struct http_opts *o)
{
	struct http_client *c = xcalloc(1, sizeof *c);
	c->o = *o;
	c->base_url = xstrdup(o->base_url);
	c->api_key = o->api_key;
	c->cafile = o->cafile ? xstrdup(o->cafile) : NULL;
	if (c->o.timeout <= 0)
		c->o.timeout = 10;
	if (c->o.max_attempts <= 0)
		c->o.max_attempts = 4;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->locks[i], NULL);
	c->share = curl_share_init();
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	pthread_key_create(&c->handle_key, handle_destroy);
	return c;
}

void http_free(struct http_client *c)
{
	if (!c)
		return;
	CURL *h = pthread_getspecific(c->handle_key);
	if (h) {
		curl_easy_cleanup(h);
		pthread_setspecific(c->handle_key, NULL);
	}
	pthread_key_delete(c->handle_key);
	curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->locks[i]);
	free(c->base_url);
	free(c->cafile);
	free(c);
}

void http_set_interrupt(struct http_client *c, bool (*interrupted)(void *arg),
			void *arg)
{
	c->interrupted = interrupted;
	c->interrupted_arg = arg;
}

void http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->body);
	r->retry_after = -1;
}

void http_resp_free(struct http_resp *r)
{
	buf_free(&r->body);
}

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
	struct http_resp *r = u;
	size_t len = size * n;
	if (r->body.len + len > HTTP_MAX_BODY) {
		r->too_large = true;
		return 0; /* makes curl fail the transfer */
	}
	buf_add(&r->body, p, len);
	return len;
}

static CURL *thread_handle(struct http_client *c)
{
	CURL *h = pthread_getspecific(c->handle_key);
	if (!h) {
		h = curl_easy_init();
		if (!h)
			abort();
		pthread_setspecific(c->handle_key, h);
	} else {
		curl_easy_reset(h);
	}
	return h;
}

void http_thread_done(struct http_client *c)
{
	CURL *h = pthread_getspecific(c->handle_key);
	if (h) {
		pthread_setspecific(c->handle_key, NULL);
		curl_easy_cleanup(h);
	}
}

static bool retryable(const struct http_resp *r)
{
	if (r->too_large)
		return false;
	if (r->curl != CURLE_OK)
		return r->curl != CURLE_PEER_FAILED_VERIFICATION &&
		       r->curl != CURLE_SSL_CACERT_BADFILE &&
		       r->curl != CURLE_UNSUPPORTED_PROTOCOL &&
		       r->curl != CURLE_URL_MALFORMAT;
	return r->status == 429 || r->status >= 500;
}

static double jitter(void)
{
	/* Jitter only spreads clients apart; it need not be unpredictable. */
	static __thread unsigned int seed;
	if (!seed)
		seed = (unsigned int)(now_monotonic() * 1e6) ^
		       (unsigned int)(size_t)&seed;
	return 0.5 + (double)rand_r(&seed) / RAND_MAX / 2;
}

/* The budget's word on one attempt: true to send it now. A read it
 * refuses is not sent (r->held says why). A POST or DELETE held by a
 * Retry-After waits it out (logged once), up to HTTP_HOLD_WAIT and while
 * its caller has not given up, and then has its full time limit. */
static bool admit(struct http_client *c, const char *method, const char *path,
		  bool always, double timeout, double *deadline,
		  struct http_resp *r)
{
	double began = now_monotonic(), until;
	bool told = false;
	for (;;) {
		enum budget_verdict v =
		    budget_take(c->o.budget, always, &until);
		double now = now_monotonic();
		if (v == BUDGET_OK) {
			r->held = BUDGET_OK;
			if (told && now + timeout > *deadline)
				*deadline = now + timeout;
			return true;
		}
		r->held = v;
		r->held_for = until - now;
		if (!always || until > began + HTTP_HOLD_WAIT)
			return false;
		if (c->interrupted && c->interrupted(c->interrupted_arg)) {
			r->interrupted = true;
			return false;
		}
		if (!told)
			plog(method, path,
			     "the API holds calls for %.0f s more "
			     "(Retry-After): waiting, then sending",
			     until - now);
		told = true;
		sleep_seconds(fmin(0.1, until - now));
	}
}

bool http_call(struct http_client *c, const char *method, const char *path,
	       const char *json_body, const char *endpoint, struct http_resp *r)
{
	return http_call_timeout(c, method, path, json_body, endpoint,
				 c->o.timeout, r);
}

bool http_call_timeout(struct http_client *c, const char *method,
		       const char *path, const char *json_body,
		       const char *endpoint, double timeout,
		       struct http_resp *r)
{
	/* GET and DELETE may be repeated; a POST never is (mkdir checks the
	 * listing instead). */
	bool idempotent = !strcmp(method, "GET") || !strcmp(method, "DELETE");
	/* A mkdir's, an rmdir's or a guard's: outside the budget's count. */
	bool always = !strcmp(method, "POST") || !strcmp(method, "DELETE");
	if (!c->api_key || !*c->api_key) {
		/* As the Prime CLI: fail before sending anything. */
		r->no_key = true;
		return false;
	}
	double deadline = now_monotonic() + timeout;
	struct buf url;
	buf_init(&url);
	buf_printf(&url, "%s/api/v1%s", c->base_url, path);

	struct curl_slist *hdrs = NULL;
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (c->api_key && *c->api_key) {
		struct buf auth;
		buf_init(&auth);
		buf_printf(&auth, "Authorization: Bearer %s", c->api_key);
		hdrs = curl_slist_append(hdrs, auth.data);
		explicit_bzero(auth.data, auth.len);
		buf_free(&auth);
	}

	for (int attempt = 1;; attempt++) {
		buf_reset(&r->body);
		r->status = 0;
		r->retry_after = -1;
		r->error[0] = '\0';
		r->attempts = attempt;
		r->held = BUDGET_OK;
		if (!admit(c, method, path, always, timeout, &deadline, r)) {
			r->curl = CURLE_OK; /* nothing sent: r->held says why */
			break;
		}
		double remaining = deadline - now_monotonic();
		if (remaining < 0.05) {
			r->curl = CURLE_OPERATION_TIMEDOUT;
			snprintf(r->error, sizeof r->error,
				 "no time left for the call (timeout %.0f s)",
				 timeout);
			break;
		}
		CURL *h = thread_handle(c);
		curl_easy_setopt(h, CURLOPT_SHARE, c->share);
		curl_easy_setopt(h, CURLOPT_URL, url.data);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
				 (long)(remaining * 1000));
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)(fmin(remaining, 10.0) * 1000));
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		if (c->cafile)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(h, CURLOPT_USERAGENT,
				 "primefs/" PRIMEFS_VERSION);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (!idempotent) {
			/* On a reused connection that turns out dead, libcurl
			 * silently sends the request again: for a POST that
			 * may rent a second pod. A fresh connection of its own
			 * is never retried behind our back. */
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
			curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
		}
		if (json_body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
		} else if (!idempotent) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		}
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);

		stats_api_call(endpoint);
		r->curl = curl_easy_perform(h);
		if (r->curl == CURLE_OK) {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE,
					  &r->status);
			/* Seconds from either form of the header. 0 (none, or
			 * "0") and < 0 (a past date, libcurl < 8.12) leave
			 * the choice to our own backoff. */
			curl_off_t ra = 0;
			if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) ==
				CURLE_OK &&
			    ra > 0)
				r->retry_after = (double)ra;
		}
		if (!r->error[0] && r->curl != CURLE_OK)
			snprintf(r->error, sizeof r->error, "%s",
				 curl_easy_strerror(r->curl));
		/* The handle must not outlive its use of the headers list. */
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);

		if (r->status == 429) {
			stats_count(ST_RATE_LIMITED);
			/* Every later call waits, this thread's retry too. */
			budget_hold(c->o.budget, r->retry_after);
		}
		if (!idempotent || !retryable(r) ||
		    attempt >= c->o.max_attempts)
			break;
		if (always && r->status == 429 && r->retry_after > 0) {
			/* A DELETE waits the hold out in admit(). */
			stats_count(ST_RETRIES);
			continue;
		}
		double wait =
		    (r->retry_after >= 0 &&
		     (r->status == 429 || r->status == 503))
			? r->retry_after
			: fmin(2.0, 0.1 * pow(2, attempt - 1)) * jitter();
		if (now_monotonic() + wait >= deadline - 0.05)
			break; /* would not fit: report what we have */
		stats_count(ST_RETRIES);
		sleep_seconds(wait);
	}
	for (struct curl_slist *s = hdrs; s; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(hdrs);
	buf_free(&url);
	return r->held == BUDGET_OK && !r->interrupted && r->curl == CURLE_OK &&
	       r->status >= 200 && r->status < 300;
}

void http_escape_into(struct buf *b, const char *s)
{
	/* The handle argument is unused since libcurl 7.82. */
	char *e = curl_easy_escape(NULL, s, 0);
	if (!e)
		abort(); /* out of memory, as xmalloc */
	buf_adds(b, e);
	curl_free(e);
}
