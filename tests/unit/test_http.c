/* test_http.c — the HTTP client under many threads at once, against the
 * fake API (tests/fake_api.py, over TLS) that tests/test_http.py starts and
 * names on the command line: waves of threads doing GETs and POSTs through
 * one http_client, so that easy handles, their connections, the shared DNS
 * cache and TLS sessions are made, reused and dropped as threads come and
 * go. Run it under ASan (and helgrind when practical). Prints TAP, then
 * "# sent METHOD /endpoint N" lines (requests put on the wire, retries
 * included) for the driver to compare with the fake API's own counts.
 *
 * usage: test_http BASE_URL CAFILE KEY [THREADS WAVES CALLS] */
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>

#include "http.h"
#include "log.h"
#include "t.h"

struct target {
	const char *method, *path, *endpoint;
	unsigned long sent;  /* attempts, as http_resp.attempts counts them */
	unsigned long calls; /* http_call()s */
	unsigned long good;  /* 2xx with a JSON object for a body */
	unsigned long bad;   /* anything else */
};

static struct target targets[] = {
    {"GET", "/pods?offset=0&limit=100", "GET /pods", 0, 0, 0, 0},
    {"GET", "/billing/wallet", "GET /billing/wallet", 0, 0, 0, 0},
    {"GET", "/availability/gpu-summary", "GET /availability/gpu-summary", 0, 0,
     0, 0},
    /* Not allowed (405): a POST that creates nothing, sent once per call. */
    {"POST", "/billing/wallet", "POST /billing/wallet", 0, 0, 0, 0},
};
#define N_TARGETS (sizeof targets / sizeof targets[0])

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct http_client *http;
static int calls_per_thread;

static bool is_object(const struct buf *b)
{
	if (!b->len)
		return false;
	json_object *o = json_tokener_parse(b->data);
	bool ok = o && json_object_is_type(o, json_type_object);
	json_object_put(o);
	return ok;
}

static void *worker(void *arg)
{
	unsigned int n = (unsigned int)(size_t)arg;
	for (int i = 0; i < calls_per_thread; i++) {
		struct target *t = &targets[(n + (unsigned int)i) % N_TARGETS];
		bool post = !strcmp(t->method, "POST");
		struct http_resp r;
		http_resp_init(&r);
		bool ok = http_call(http, t->method, t->path,
				    post ? "{}" : NULL, t->endpoint, &r);
		bool good = post ? r.status == 405 || r.status == 0
				 : ok && is_object(&r.body);
		pthread_mutex_lock(&mu);
		t->calls++;
		t->sent += (unsigned long)r.attempts;
		if (good) {
			t->good++;
		} else {
			t->bad++;
			printf("# %s %s: status %ld curl %d (%s) after %d\n",
			       t->method, t->path, r.status, (int)r.curl,
			       r.error, r.attempts);
		}
		pthread_mutex_unlock(&mu);
		http_resp_free(&r);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: %s BASE_URL CAFILE KEY "
			"[THREADS WAVES CALLS]\n",
			argv[0]);
		return 2;
	}
	int threads = argc > 4 ? atoi(argv[4]) : 16;
	int waves = argc > 5 ? atoi(argv[5]) : 3;
	calls_per_thread = argc > 6 ? atoi(argv[6]) : 12;
	log_init(100, false);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct http_opts o = {.base_url = argv[1],
			      .cafile = *argv[2] ? argv[2] : NULL,
			      .api_key = argv[3],
			      .timeout = 60,
			      .max_attempts = 12};
	http = http_new(&o);

	/* Waves: each thread's handle (and its connections) goes with the
	 * thread; the next wave starts from fresh handles. */
	pthread_t *tid = calloc((size_t)threads, sizeof *tid);
	for (int w = 0; w < waves; w++) {
		for (int i = 0; i < threads; i++)
			CHECK(pthread_create(
				  &tid[i], NULL, worker,
				  (void *)(size_t)(w * threads + i)) == 0);
		for (int i = 0; i < threads; i++)
			pthread_join(tid[i], NULL);
	}
	free(tid);

	unsigned long total = 0;
	for (size_t i = 0; i < N_TARGETS; i++) {
		struct target *t = &targets[i];
		CHECK(t->calls > 0);
		CHECK(t->bad == 0);
		printf("# sent %s %lu\n", t->endpoint, t->sent);
		total += t->calls;
	}
	CHECK(total == (unsigned long)(threads * waves * calls_per_thread));
	http_free(http);
	curl_global_cleanup();
	log_shutdown();
	return t_done();
}
