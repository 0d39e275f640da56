/* test_api.c — the API client against a tiny in-process HTTP server that
 * answers from a script: paging loops (stop on totalCount, survive an empty
 * page, advance by what came), retries and Retry-After, errno mapping and
 * its log lines, deadlines, percent-encoding of what goes into a URL. Real
 * sockets, real libcurl. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "api.h"
#include "creds.h"
#include "errmap.h"
#include "log.h"
#include "podlog.h"
#include "t.h"
#include "t_server.h"

static struct api api;
static struct http_client *http;
static char base[64];

/* A new client with this deadline, against the server answering from fn. */
static void use(t_script_fn fn, double timeout)
{
	if (http)
		http_free(http);
	struct http_opts ho = {
	    .base_url = base, .api_key = "k", .timeout = timeout};
	http = http_new(&ho);
	api.http = http;
	t_server_script(fn);
}

/* ---- scripts ---- */

static int page_of(const char *path)
{
	const char *p = strstr(path, "page=");
	return p ? atoi(p + 5) : 0;
}

static void items_json(char *out, size_t size, int n, int total)
{
	size_t len = (size_t)snprintf(out, size, "{\"items\":[");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(
		    out + len, size - len,
		    "%s{\"gpuType\":\"H100_80GB\",\"provider\":\"p%d\"}",
		    i ? "," : "", i);
	if (total >= 0)
		snprintf(out + len, size - len, "],\"totalCount\":%d}", total);
	else
		snprintf(out + len, size - len, "]}");
}

/* 25 offers in pages of at most 10 (the server clamps page_size) — but the
 * client asks for 100, so: page 1 has 10, page 2 10, page 3 5. */
static void s_paging(const char *path, int nth, struct t_answer *a)
{
	(void)nth;
	if (strstr(path, "multi-node")) {
		items_json(a->body, sizeof a->body, 0, 0);
		return;
	}
	int page = page_of(path);
	int n = page < 3 ? 10 : page == 3 ? 5 : 0;
	items_json(a->body, sizeof a->body, n, 25);
}

/* totalCount lies: 1000, but page 2 is empty. */
static void s_lying(const char *path, int nth, struct t_answer *a)
{
	(void)nth;
	int page = page_of(path);
	items_json(a->body, sizeof a->body, page == 1 ? 3 : 0, 1000);
}

static void s_no_total(const char *path, int nth, struct t_answer *a)
{
	(void)nth;
	(void)path;
	items_json(a->body, sizeof a->body, 2, -1);
}

/* Pods: total 7, server clamps the limit to 3. */
static void s_pods(const char *path, int nth, struct t_answer *a)
{
	(void)nth;
	const char *o = strstr(path, "offset=");
	int offset = o ? atoi(o + 7) : 0;
	size_t len = (size_t)snprintf(a->body, sizeof a->body,
				      "{\"total_count\":7,\"offset\":%d,"
				      "\"limit\":3,\"data\":[",
				      offset);
	for (int i = offset; i < offset + 3 && i < 7; i++)
		len += (size_t)snprintf(a->body + len, sizeof a->body - len,
					"%s{\"id\":\"c%d\",\"name\":\"n%d\"}",
					i > offset ? "," : "", i, i);
	snprintf(a->body + len, sizeof a->body - len, "]}");
}

static int fixed_status;
static const char *fixed_body;
static const char *fixed_headers = "";
static void s_fixed(const char *path, int nth, struct t_answer *a)
{
	(void)path;
	(void)nth;
	a->status = fixed_status;
	a->headers = fixed_headers;
	snprintf(a->body, sizeof a->body, "%s", fixed_body);
}

static void s_flaky(const char *path, int nth, struct t_answer *a)
{
	(void)path;
	if (nth == 0) {
		a->status = 503;
		a->headers = "Retry-After: 0\r\n";
		snprintf(a->body, sizeof a->body, "{\"detail\":\"busy\"}");
	} else {
		snprintf(a->body, sizeof a->body, "{\"balance_usd\":5}");
	}
}

static void s_slow(const char *path, int nth, struct t_answer *a)
{
	(void)path;
	(void)nth;
	a->delay = 60;
}

/* ---- tests ---- */

/* One GET of the wallet through http_call itself, answered by s_fixed. */
static struct http_resp *raw_get(struct http_resp *r, int status,
				 const char *headers, double timeout)
{
	fixed_status = status;
	fixed_body = "{\"detail\":\"slow down\"}";
	fixed_headers = headers;
	use(s_fixed, timeout);
	http_resp_init(r);
	http_call(http, "GET", "/billing/wallet", NULL, "GET /billing/wallet",
		  r);
	fixed_headers = "";
	return r;
}

static void test_retry_after(void)
{
	struct http_resp r;
	char hdr[128];
	struct tm tm;

	/* Seconds: 3600 does not fit the deadline, so no retry at all. */
	raw_get(&r, 429, "Retry-After: 3600\r\n", 5);
	CHECK(r.status == 429 && r.attempts == 1 && t_server_requests() == 1);
	CHECK(r.retry_after == 3600);
	http_resp_free(&r);

	/* Seconds that fit: waited for, then asked again. */
	raw_get(&r, 503, "Retry-After: 1\r\n", 5);
	CHECK(r.status == 503 && r.attempts == 4 && t_server_requests() == 4);
	http_resp_free(&r);

	/* Seconds past a short deadline: the backoff alone would have fitted
	 * a retry; the server's word wins. */
	raw_get(&r, 429, "Retry-After: 2\r\n", 1);
	CHECK(r.status == 429 && r.attempts == 1 && t_server_requests() == 1);
	CHECK(r.retry_after == 2);
	http_resp_free(&r);

	/* An HTTP-date an hour ahead is an hour, too. */
	time_t later = time(NULL) + 3600;
	strftime(hdr, sizeof hdr, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
		 gmtime_r(&later, &tm));
	raw_get(&r, 429, hdr, 5);
	CHECK(r.status == 429 && r.attempts == 1 && t_server_requests() == 1);
	CHECK(r.retry_after > 3500 && r.retry_after <= 3600);
	printf("# Retry-After date gave %.0f s\n", r.retry_after);
	http_resp_free(&r);

	/* A date in the past, or nonsense: our own backoff, every attempt. */
	raw_get(&r, 503, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n", 5);
	CHECK(r.status == 503 && r.attempts == 4 && t_server_requests() == 4);
	CHECK(r.retry_after < 0);
	http_resp_free(&r);
	raw_get(&r, 503, "Retry-After: soon\r\n", 5);
	CHECK(r.attempts == 4 && r.retry_after < 0);
	http_resp_free(&r);
}

static void check_escape(const char *in, const char *want)
{
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "<");
	http_escape_into(&b, in);
	buf_adds(&b, ">");
	struct buf w;
	buf_init(&w);
	buf_printf(&w, "<%s>", want);
	CHECK_STR(b.data, w.data);
	buf_free(&w);
	buf_free(&b);
}

static void test_escape(void)
{
	check_escape("", "");
	check_escape("cm3x-Abc_09.~", "cm3x-Abc_09.~");
	check_escape("../pods/x y", "..%2Fpods%2Fx%20y");
	check_escape("a&b=c?d#e+f%g", "a%26b%3Dc%3Fd%23e%2Bf%25g");
	check_escape("\n\r\x01\x7f\xff\xc3\xa9", "%0A%0D%01%7F%FF%C3%A9");

	/* A hostile team id stays one query value. */
	api.team_id = "t1&limit=1000 /é?#";
	fixed_status = 200;
	fixed_body = "{\"balance_usd\":1}";
	use(s_fixed, 5);
	struct wallet w;
	CHECK(api_get_wallet(&api, -1, &w) == 0);
	wallet_free(&w);
	CHECK_STR(t_server_last_path(),
		  "/api/v1/billing/wallet?limit=100&offset=0&teamId="
		  "t1%26limit%3D1000%20%2F%C3%A9%3F%23");
	api.team_id = NULL;
}

static int fixed(int status, const char *body)
{
	fixed_status = status;
	fixed_body = body;
	use(s_fixed, 5);
	struct wallet w;
	int rc = api_get_wallet(&api, -1, &w);
	if (!rc)
		wallet_free(&w);
	return rc;
}

static bool logged(const char *needle)
{
	struct buf b;
	buf_init(&b);
	log_render(&b);
	bool found = b.data && strstr(b.data, needle);
	buf_free(&b);
	return found;
}

static const char *log_text(const char *body)
{
	static struct buf b;
	buf_free(&b);
	api_log_text(body, strlen(body), &b);
	return b.data ? b.data : "";
}

/* The log's undocumented shapes, and the bucket that limits its fetches. */
static void test_log_text_and_bucket(void)
{
	CHECK_STR(log_text("\"a\\nb\\n\""), "a\nb\n");
	CHECK_STR(log_text("\"a\\nb\""), "a\nb\n");
	CHECK_STR(log_text("[\"a\",\"b\\n\",3,{\"m\":1}]"),
		  "a\nb\n3\n{\"m\":1}\n");
	CHECK_STR(log_text("{\"logs\":[\"a\",\"b\"],\"total\":2}"), "a\nb\n");
	CHECK_STR(log_text("{\"total\":2,\"lines\":[\"x\"]}"), "x\n");
	CHECK_STR(log_text("{\"n\":1,\"whatever\":[\"y\"]}"), "y\n");
	CHECK_STR(log_text("{\"logs\":\"one\\ntwo\"}"), "one\ntwo\n");
	CHECK_STR(log_text("{\"n\":1}"), "{\"n\":1}\n");
	CHECK_STR(log_text("[]"), "");
	CHECK_STR(log_text("\"\""), "");
	CHECK_STR(log_text("null"), "");
	CHECK_STR(log_text(""), "");
	CHECK_STR(log_text("plain text, not JSON"), "plain text, not JSON\n");
	CHECK_STR(log_text("{\"a\":1} and more"), "{\"a\":1} and more\n");
	CHECK_STR(log_text("12"), "12\n");
	log_text(""); /* frees */

	struct bucket b;
	bucket_init(&b, 10, 3.0 / 60, 100);
	int got = 0;
	for (int i = 0; i < 1000; i++)
		got += bucket_take(&b, 100);
	CHECK(got == 10);
	CHECK(!bucket_take(&b, 110)); /* half a token */
	CHECK(bucket_take(&b, 121));  /* one more after 20 s */
	CHECK(!bucket_take(&b, 121));
	got = 0;
	for (int i = 0; i < 1000; i++)
		got += bucket_take(&b,
				   1e6); /* a long idle: no more than a burst */
	CHECK(got == 10);
	/* An hour of one fetch a second costs the burst plus 3 a minute. */
	bucket_init(&b, 10, 3.0 / 60, 0);
	got = 0;
	for (int s = 0; s < 3600; s++)
		got += bucket_take(&b, s);
	CHECK(got <= 10 + 180);
}

/* GET /pods/{id}/log: the id, as a JSON string. */
static void s_pod_log(const char *path, int nth, struct t_answer *a)
{
	(void)nth;
	const char *id = path + strlen("/api/v1/pods/");
	if (strncmp(path, "/api/v1/pods/", strlen("/api/v1/pods/")))
		id = path;
	int n = (int)strcspn(id, "/");
	snprintf(a->body, sizeof a->body, "\"log of %.*s\"", n, id);
}

/* More pods than the logs kept: each log is its own pod's, read once
 * while it is held; the oldest make room. */
static void test_podlog_many(void)
{
	use(s_pod_log, 5);
	struct podlog_opts o = {.ttl = 600, .burst = 5000, .per_minute = 1};
	struct podlog *pl = podlog_new(&api, &o);
	enum { N = PODLOG_MAX_PODS + 100 };
	char id[32], want[64];
	struct buf b;
	buf_init(&b);
	size_t right = 0;
	/* A scattered order: 7919 is prime, so every i once. */
	for (size_t k = 0; k < N; k++) {
		size_t i = k * 7919 % N;
		snprintf(id, sizeof id, "pod%05zu", i);
		snprintf(want, sizeof want, "log of %s\n", id);
		buf_reset(&b);
		right += podlog_read(pl, id, &b) == 0 && b.data &&
			 !strcmp(b.data, want);
	}
	CHECK(right == N);
	CHECK(t_server_requests() == N);
	/* The last PODLOG_MAX_PODS read are held: no more requests. */
	right = 0;
	for (size_t k = N - PODLOG_MAX_PODS; k < N; k++) {
		size_t i = k * 7919 % N;
		snprintf(id, sizeof id, "pod%05zu", i);
		snprintf(want, sizeof want, "log of %s\n", id);
		buf_reset(&b);
		right += podlog_read(pl, id, &b) == 0 && b.data &&
			 !strcmp(b.data, want);
	}
	CHECK(right == PODLOG_MAX_PODS);
	CHECK(t_server_requests() == N);
	/* The first one read was made room for: fetched again. */
	buf_reset(&b);
	CHECK(podlog_read(pl, "pod00000", &b) == 0);
	CHECK_STR(b.data, "log of pod00000\n");
	CHECK(t_server_requests() == N + 1);
	buf_free(&b);
	podlog_free(pl);
}

int main(void)
{
	log_init(200, false);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(base, sizeof base, "http://127.0.0.1:%d", t_server_start());

	struct offer_list ol;
	use(s_paging, 5);
	CHECK(api_list_offers(&api, &ol) == 0);
	CHECK(ol.n == 25);
	CHECK(t_server_requests() ==
	      4); /* 3 pages of /gpus, 1 of /multi-node */
	offer_list_free(&ol);

	use(s_lying, 5);
	CHECK(api_list_offers(&api, &ol) == 0);
	CHECK(ol.n == 6);		 /* 3 from each endpoint */
	CHECK(t_server_requests() == 4); /* an empty page stops the loop */
	offer_list_free(&ol);

	use(s_no_total, 5);
	CHECK(api_list_offers(&api, &ol) == 0);
	CHECK(t_server_requests() == 2 && ol.n == 4);
	offer_list_free(&ol);

	struct pod_list pl;
	use(s_pods, 5);
	CHECK(api_list_pods(&api, false, &pl) == 0);
	CHECK(pl.n == 7 && t_server_requests() == 3);
	CHECK(pl.n == 7 && !strcmp(pl.v[6].id, "c6"));
	pod_list_free(&pl);

	CHECK(fixed(401, "{\"detail\":\"bad key\"}") == -EACCES);
	CHECK(t_server_requests() == 1); /* never retried */
	CHECK(logged("HTTP 401"));
	CHECK(fixed(403, "{\"detail\":\"forbidden\"}") == -EACCES);
	CHECK(fixed(402, "{\"detail\":\"Payment required\"}") == -EDQUOT);
	CHECK(fixed(404, "{\"detail\":\"Pod not found\"}") == -ENOENT);
	CHECK(logged("Pod not found"));
	CHECK(fixed(422, "{\"detail\":[{\"loc\":[\"body\",\"pod\",\"cloudId\"],"
			 "\"msg\":\"field required\"},{\"loc\":[\"body\","
			 "\"pod\",\"gpuCount\"],\"msg\":\"must be > 0\"}]}") ==
	      -EINVAL);
	CHECK(logged("pod.cloudId: field required; pod.gpuCount: must be > 0"));
	CHECK(fixed(422, "{\"errors\":[{\"param\":\"pod.maxPrice\","
			 "\"details\":\"price 2.5 above 2\"},{\"param\":\"\","
			 "\"details\":\"bad\"}]}") == -EINVAL);
	CHECK(logged("pod.maxPrice: price 2.5 above 2; bad"));
	CHECK(fixed(500, "<html>oops</html>") == -EIO);
	CHECK(t_server_requests() == 4); /* retried, then given up */
	CHECK(logged("oops"));
	fixed_headers = "Retry-After: 0\r\n";
	CHECK(fixed(429, "{\"detail\":\"slow down\"}") == -EAGAIN);
	CHECK(t_server_requests() == 4);
	fixed_headers = "Retry-After: 3600\r\n";
	double t0 = now_monotonic();
	CHECK(fixed(429, "{\"detail\":\"slow down\"}") == -EAGAIN);
	CHECK(t_server_requests() ==
	      1); /* a Retry-After past the deadline: no wait */
	CHECK(now_monotonic() - t0 < 10); /* not a wait of 3600 s */
	fixed_headers = "";
	CHECK(fixed(200, "{\"balance_usd\": 1") == -EIO); /* truncated */
	CHECK(logged("not a JSON object"));
	CHECK(fixed(200, "[1,2]") == -EIO);
	CHECK(fixed(200, "{\"balance_usd\":null}") == 0);

	test_retry_after();
	test_escape();

	use(s_flaky, 5);
	struct wallet w;
	CHECK(api_get_wallet(&api, -1, &w) == 0);
	CHECK(t_server_requests() == 2 && w.balance.set && w.balance.i == 5);
	wallet_free(&w);

	use(s_slow, 1);
	t0 = now_monotonic();
	CHECK(api_get_wallet(&api, -1, &w) == -ETIMEDOUT);
	double took = now_monotonic() - t0;
	CHECK(took < 10); /* its 1 s deadline, not the 60 s answer */
	printf("# slow call gave up after %.2f s\n", took);

	/* Nothing listens on port 1: refused at once, retried, EIO. */
	http_free(http);
	struct http_opts dead = {
	    .base_url = "http://127.0.0.1:1", .api_key = "k", .timeout = 3};
	http = http_new(&dead);
	api.http = http;
	t0 = now_monotonic();
	CHECK(api_get_wallet(&api, -1, &w) == -EIO);
	CHECK(now_monotonic() - t0 < 10); /* not a hang */

	/* No key: nothing is sent. */
	http_free(http);
	struct http_opts nokey = {.base_url = base, .timeout = 3};
	http = http_new(&nokey);
	api.http = http;
	t_server_script(s_fixed);
	CHECK(api_get_wallet(&api, -1, &w) == -EACCES);
	CHECK(t_server_requests() == 0);
	CHECK(logged("no API key configured"));
	http_free(http);
	http = NULL;

	/* The key never reaches the log. */
	CHECK(!logged("Bearer"));
	char *u = normalize_base_url("http://127.0.0.1:8080/api/v1/");
	CHECK_STR(u, "http://127.0.0.1:8080");
	free(u);
	u = normalize_base_url("https://api.primeintellect.ai");
	CHECK_STR(u, "https://api.primeintellect.ai");
	free(u);
	test_log_text_and_bucket();
	test_podlog_many();
	http_free(http);
	curl_global_cleanup();
	log_shutdown();
	return t_done();
}
