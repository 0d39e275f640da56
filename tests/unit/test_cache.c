/* test_cache.c — the tree over installed snapshots: every kind of node,
 * rendering rules (one value and a newline, empty for unknown, 4-decimal
 * cost), the cheapest link, and probe names answered without a fetch.
 * Then the cache against a tiny in-process HTTP server (t_server.c: real
 * sockets, real libcurl): the held snapshot served while a slow fetch runs, a
 * listing in flight never undoing a local change, refresh keeping answers for
 * an outage, bounded and interruptible waits, and the pods hook. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "t.h"
#include "t_server.h"
#include "template.h"
#include "tree.h"

static const char *dir;

static json_object *load(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return json_object_from_file(path);
}

static struct tree *tree;

static const char *cat(const char *path)
{
	static struct buf b;
	buf_free(&b);
	struct node n;
	int rc = tree_resolve(tree, path, &n);
	if (rc) {
		buf_printf(&b, "<errno %d>", -rc);
		return b.data;
	}
	if (n.type == N_LINK)
		rc = tree_readlink(tree, &n, &b);
	else
		rc = tree_render(tree, &n, &b);
	node_release(&n);
	if (rc)
		buf_printf(&b, "<errno %d>", -rc);
	return b.data ? b.data : "";
}

static int count_add(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

static int list_count(const char *path)
{
	struct node n;
	int count = 0;
	if (tree_resolve(tree, path, &n))
		return -1;
	int rc = tree_list(tree, &n, count_add, &count);
	node_release(&n);
	return rc ? rc : count;
}

/* ---- a pods endpoint whose answer, delay and status the test sets ---- */

static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static char srv_body[2048];
static int srv_status = 200;
static double srv_delay;

/* The answer is what was set when the request came. */
static void s_pods(const char *path, int nth, struct t_answer *a)
{
	(void)path;
	(void)nth;
	pthread_mutex_lock(&srv_mu);
	snprintf(a->body, sizeof a->body, "%s", srv_body);
	a->status = srv_status;
	a->delay = srv_delay;
	pthread_mutex_unlock(&srv_mu);
}

/* The listing answers these pods (ids "p-<name>"), after `delay`. */
static void answer(const char *names, int status, double delay)
{
	pthread_mutex_lock(&srv_mu);
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"data\": [");
	int n = 0;
	char copy[256];
	snprintf(copy, sizeof copy, "%s", names);
	for (char *save, *w = strtok_r(copy, " ", &save); w;
	     w = strtok_r(NULL, " ", &save))
		buf_printf(&b,
			   "%s{\"id\": \"p-%s\", \"name\": \"%s\", "
			   "\"status\": \"ACTIVE\"}",
			   n++ ? ", " : "", w, w);
	buf_printf(&b, "], \"total_count\": %d}", n);
	snprintf(srv_body, sizeof srv_body, "%s", b.data);
	buf_free(&b);
	srv_status = status;
	srv_delay = delay;
	pthread_mutex_unlock(&srv_mu);
}

/* Waits (bounded: a hang fails the test, not a slow machine) until the
 * server has answered n requests: counted once the answer is sent, which
 * may be just after the client has it. */
static bool answered(int n)
{
	for (int i = 0; i < 2000 && t_server_answered() < n; i++)
		sleep_seconds(0.01);
	return t_server_answered() >= n;
}

/* The same for n requests come (their answers may be held). */
static bool requested(int n)
{
	for (int i = 0; i < 2000 && t_server_requests() < n; i++)
		sleep_seconds(0.01);
	return t_server_requests() >= n;
}

static bool has(const struct snap *s, const char *name)
{
	return snap_pod(s, name) != NULL;
}

/* Whether the held pods snapshot comes to have (or lose) `name` within a
 * second: what a client-side install does right after the answer. */
static bool held_has_soon(struct cache *c, const char *name, bool want)
{
	for (int i = 0; i < 100; i++) {
		struct snap *s;
		if (cache_get(c, SNAP_PODS, CACHE_HELD, &s) == 0) {
			bool h = has(s, name);
			snap_put(s);
			if (h == want)
				return true;
		}
		sleep_seconds(0.01);
	}
	return false;
}

static int hook_calls;
static char hook_saw[64];
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;

static void pods_hook(void *arg, const struct snap *s)
{
	pthread_mutex_lock(&hook_mu);
	hook_calls += *(int *)arg;
	snprintf(hook_saw, sizeof hook_saw, "%zu pods", s->pods.n);
	pthread_mutex_unlock(&hook_mu);
}

static int hooked(void)
{
	pthread_mutex_lock(&hook_mu);
	int n = hook_calls;
	pthread_mutex_unlock(&hook_mu);
	return n;
}

static bool give_up;
/* Set by the test's own thread: held answers go once its reader waits. */
static bool release_when_waiting;
static pthread_t tester;
/* The hook runs on the fetch's thread just after the install that woke
 * the reader: the count once it reaches n (bounded wait). */
static int hooked_soon(int n)
{
	for (int i = 0; i < 500 && hooked() < n; i++)
		sleep_seconds(0.01);
	return hooked();
}

/* Asked by a waiting reader (and by libcurl on the fetch's thread). */
static bool gave_up(void *arg)
{
	(void)arg;
	if (pthread_equal(pthread_self(), tester) && release_when_waiting) {
		release_when_waiting = false;
		t_server_hold(false);
	}
	return give_up;
}

static struct pod local_pod(const char *name)
{
	char text[256];
	snprintf(text, sizeof text,
		 "{\"id\": \"p-%s\", \"name\": \"%s\", \"status\": "
		 "\"PENDING\"}",
		 name, name);
	json_object *o = json_tokener_parse(text);
	struct pod p;
	pod_parse(o, false, &p);
	json_object_put(o);
	return p;
}

static void cache_behaviour(void)
{
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", t_server_start());
	t_server_script(s_pods);
	struct http_opts ho = {
	    .base_url = base, .api_key = "k", .timeout = 10, .max_attempts = 1};
	struct http_client *http = http_new(&ho);
	struct api api = {.http = http};
	double ttl[SNAP_KINDS] = {1e9, 0.2, 1e9, 1e9};
	struct cache *c = cache_new(&api, ttl);
	tester = pthread_self();
	int one = 1;
	cache_set_pods_hook(c, pods_hook, &one);
	cache_set_interrupt(c, gave_up, NULL);
	struct snap *s;

	/* A first fetch: waited for, installed, the hook told. */
	answer("a b", 200, 0);
	CHECK(cache_get(c, SNAP_PODS, CACHE_TTL, &s) == 0);
	CHECK(has(s, "a") && has(s, "b"));
	snap_put(s);
	CHECK(hooked_soon(1) == 1);
	pthread_mutex_lock(&hook_mu);
	CHECK_STR(hook_saw, "2 pods");
	pthread_mutex_unlock(&hook_mu);

	/* Past the TTL with a slow API (its answer held until the test lets
	 * it go): every reader gets the held snapshot while the one fetch is
	 * on the wire. */
	CHECK(answered(1)); /* counted just after the client had it */
	sleep_seconds(0.3);
	t_server_hold(true);
	answer("a b c", 200, 0);
	for (int i = 0; i < 3; i++) {
		CHECK(cache_get(c, SNAP_PODS, CACHE_TTL, &s) == 0);
		CHECK(has(s, "a") && !has(s, "c"));
		snap_put(s);
		CHECK(t_server_answered() == 1); /* the refresh still pending */
	}
	CHECK(requested(2));
	CHECK(t_server_requests() == 2); /* one fetch for them all */
	/* A FRESH reader waits for a fetch that started after it began: the
	 * older one's answer goes once it waits. */
	answer("a b c d", 200, 0);
	release_when_waiting = true;
	CHECK(cache_get(c, SNAP_PODS, CACHE_FRESH, &s) == 0);
	CHECK(!release_when_waiting); /* it did wait */
	CHECK(has(s, "d"));
	snap_put(s);
	CHECK(t_server_requests() == 3);
	CHECK(hooked_soon(3) == 3);

	/* A listing in flight does not undo a change made meanwhile. Its
	 * answer is held until the change is made: a delay (even 3 s past the
	 * reader's CACHE_REVALIDATE_WAIT) let a busy machine run the test
	 * thread after the answer, so the change came after the listing and
	 * the listing was rightly installed (hooked() was 4). */
	sleep_seconds(0.3);
	t_server_hold(true);
	answer("a b c d", 200, 0);
	CHECK(cache_get(c, SNAP_PODS, CACHE_TTL, &s) == 0); /* starts it */
	CHECK(!has(s, "e"));
	snap_put(s);
	CHECK(requested(4)); /* on the wire, its answer held */
	struct pod e = local_pod("e");
	cache_pods_change(c, &e, "p-a");
	CHECK(cache_get(c, SNAP_PODS, CACHE_HELD, &s) == 0);
	CHECK(has(s, "e") && !has(s, "a"));
	snap_put(s);
	t_server_hold(false);
	CHECK(answered(4));
	CHECK(!held_has_soon(c, "a", true));
	CHECK(held_has_soon(c, "e", true));
	CHECK(hooked() == 3); /* dropped, not installed; local: no hook */

	/* refresh marks stale but keeps: with the API failing, the held
	 * answer is served after the fetch fails. */
	cache_refresh(c);
	answer("", 500, 0);
	CHECK(cache_get(c, SNAP_PODS, CACHE_HELD, &s) == 0);
	snap_put(s);
	int before = t_server_requests();
	CHECK(cache_get(c, SNAP_PODS, CACHE_TTL, &s) == 0);
	CHECK(has(s, "e"));
	snap_put(s);
	CHECK(t_server_requests() == before + 1); /* it did try */
	/* and backs off: the next readers do not ask again at once */
	CHECK(cache_get(c, SNAP_PODS, CACHE_TTL, &s) == 0);
	snap_put(s);
	CHECK(t_server_requests() == before + 1);
	/* but mkdir's fresh check does, and fails rather than serve old */
	CHECK(cache_get(c, SNAP_PODS, CACHE_FRESH, &s) == -EIO);
	CHECK(t_server_requests() == before + 2);

	/* Nothing held: the wait ends when the caller gives up, or at the
	 * time limit, before the server answers (held until then). The count
	 * starts once the earlier answers are all counted: the last one was
	 * counted just after the client had it. */
	CHECK(answered(t_server_requests()));
	t_server_hold(true);
	answer("x", 200, 0);
	int done = t_server_answered();
	give_up = true;
	CHECK(cache_get(c, SNAP_HISTORY, CACHE_TTL, &s) == -EINTR);
	give_up = false;
	CHECK(t_server_answered() == done);
	cache_set_wait_limit(c, 0.3);
	/* -ETIMEDOUT says it came before the answer (which would have been
	 * served). */
	CHECK(cache_get(c, SNAP_WALLET, CACHE_TTL, &s) == -ETIMEDOUT);
	CHECK(t_server_answered() == done);
	t_server_hold(false);

	cache_free(c); /* waits for the fetches still running */
	http_free(http);
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "tests/fixtures";
	log_init(100, false);
	/* An API nobody answers: any fetch fails with EIO, so a probe that
	 * comes back ENOENT proves it did not fetch. */
	struct http_opts ho = {
	    .base_url = "http://127.0.0.1:1", .api_key = "k", .timeout = 2};
	struct http_client *http = http_new(&ho);
	struct api api = {.http = http};
	double ttl[SNAP_KINDS] = {1e9, 1e9, 1e9, 1e9};
	struct cache *cache = cache_new(&api, ttl);
	struct template_store tmpl;
	template_store_init(&tmpl, "/nonexistent/config");
	struct tree_opts to = {.cache = cache, .tmpl = &tmpl};
	tree = tree_new(&to);

	CHECK_STR(cat("/pods/HEAD"), "<errno 2>");
	CHECK_STR(cat("/pods/.git"), "<errno 2>");
	CHECK_STR(cat("/availability/.DS_Store"), "<errno 2>");
	CHECK_STR(cat("/pods/bench"), "<errno 5>"); /* a real miss fetches */

	/* Offers: the recorded page plus the legacy set. */
	json_object *page = load("availability_response.json");
	json_object *items = jx_arr(page, "items");
	struct offer_list ol = {xcalloc(8, sizeof(struct offer)), 0};
	for (size_t i = 0; i < json_object_array_length(items); i++)
		if (!offer_parse(json_object_array_get_idx(items, i), false,
				 &ol.v[ol.n]))
			ol.n++;
	json_object_put(page);
	cache_install(cache, snap_from_offers(&ol));

	CHECK(list_count("/availability") >= 1);
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/price"),
		  "1.6567999999999998\n");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/disk"),
		  "120\n");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/spot"),
		  "\n");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/region"),
		  "united_states\n");
	CHECK(strncmp(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/"
			  "images"),
		      "ubuntu_22_cuda_12\ncuda_12_1_pytorch_2_2\n", 40) == 0);
	CHECK_STR(cat("/availability/A100_80GB/nope"), "<errno 2>");
	CHECK_STR(cat("/availability/NOPE"), "<errno 2>");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/nope"),
		  "<errno 2>");
	/* cheapest/ holds one link per type, to its cheapest rentable offer;
	 * the type directories hold offers only. */
	CHECK_STR(cat("/availability/A100_80GB/cheapest"), "<errno 2>");
	const char *cheapest = cat("/cheapest/A100_80GB");
	CHECK(strncmp(cheapest, "../availability/A100_80GB/", 26) == 0);
	char target[300];
	snprintf(target, sizeof target, "/%s", cheapest + 3);
	struct node n;
	CHECK(tree_resolve(tree, target, &n) == 0 && n.dir == D_OFFER);
	node_release(&n);
	CHECK_STR(cat("/cheapest/NOPE"), "<errno 2>");
	CHECK(tree_resolve(tree, "/availability/A100_80GB", &n) == 0);
	double best = 1e300;
	for (size_t i = 0; i < type_n_offers(n.gtype); i++) {
		const struct offer *o = type_offer_at(n.gtype, i);
		if (offer_plain_rentable(o) && o->price.d < best)
			best = o->price.d;
	}
	CHECK(type_cheapest(n.gtype) &&
	      type_cheapest(n.gtype)->price.d == best);
	CHECK(list_count("/cheapest") >= 1);
	node_release(&n);

	/* Pods. */
	json_object *pl = load("synthetic/pods_list.json");
	json_object *data = jx_arr(pl, "data");
	struct pod_list pods = {xcalloc(4, sizeof(struct pod)), 0};
	for (size_t i = 0; i < json_object_array_length(data); i++)
		if (!pod_parse(json_object_array_get_idx(data, i), false,
			       &pods.v[pods.n]))
			pods.n++;
	json_object *stopped = load("synthetic/pod_get_stopped.json");
	pod_parse(stopped, false, &pods.v[pods.n++]);
	json_object_put(stopped);
	json_object_put(pl);
	cache_install(cache, snap_from_pods(&pods, false));

	CHECK(list_count("/pods") == 3); /* the duplicated id listed once */
	CHECK_STR(cat("/pods/a100-1/status"), "ACTIVE\n");
	CHECK_STR(cat("/pods/cm9zq1x2a0001l508abcdefgh/name"), "a100-1\n");
	CHECK_STR(cat("/pods/h100-16/ssh"),
		  "root@198.51.100.21 -p 22\nroot@198.51.100.22 -p 22\n");
	CHECK_STR(cat("/pods/a40-1/ssh"), "\n");
	CHECK_STR(cat("/pods/a40-1/ip"), "\n");
	CHECK_STR(cat("/pods/a100-1/price"), "1.6568\n");
	CHECK_STR(cat("/pods/a100-1/image"), "ubuntu_22_cuda_12\n");
	const char *cost = cat("/pods/a100-1/cost");
	CHECK(strlen(cost) > 6 && cost[strlen(cost) - 6] == '.');
	CHECK_STR(cat("/pods/a100-1/created"), "2026-05-01T12:00:00.000Z\n");
	CHECK_STR(cat("/pods/a100-1/nope"), "<errno 2>");
	CHECK_STR(cat("/pods/a100-1/status/x"), "<errno 20>");
	CHECK_STR(cat("/pods/HEAD"), "<errno 2>");

	/* History: billed total, by name when unique, by id always. */
	json_object *hl = load("synthetic/pods_history.json");
	data = jx_arr(hl, "data");
	struct pod_list hist = {xcalloc(2, sizeof(struct pod)), 0};
	for (size_t i = 0; i < json_object_array_length(data); i++)
		if (!pod_parse(json_object_array_get_idx(data, i), true,
			       &hist.v[hist.n]))
			hist.n++;
	json_object_put(hl);
	cache_install(cache, snap_from_pods(&hist, true));
	CHECK(list_count("/history") == 2);
	CHECK_STR(cat("/history/cm9yy0000001l508abcdefgh/cost"), "75.7904\n");
	CHECK_STR(cat("/history/cm9yy0000002l508abcdefgh/cost"), "0.0000\n");
	CHECK_STR(cat("/history/cm9yy0000001l508abcdefgh/status"),
		  "TERMINATED\n");
	CHECK_STR(cat("/history/h100-8/cost"), "75.7904\n");
	CHECK_STR(cat("/history/a100-1/id"), "cm9yy0000002l508abcdefgh\n");
	CHECK_STR(cat("/history/a100-1/run"), "<errno 2>");
	CHECK_STR(cat("/history/a100-1/exit"), "<errno 2>");
	CHECK_STR(cat("/history/a100-1/log"), ""); /* no podlog: empty */

	/* A pod terminated here shows in history at once, with its data. */
	CHECK_STR(cat("/history/a40-1/id"), "<errno 2>");
	cache_history_add(cache, "cm9zq1x2a0004l508abcdefgh");
	cache_pods_change(cache, NULL, "cm9zq1x2a0004l508abcdefgh");
	CHECK_STR(cat("/pods/a40-1/id"), "<errno 2>");
	CHECK(list_count("/history") == 3);
	CHECK_STR(cat("/history/a40-1/status"), "TERMINATED\n");
	CHECK_STR(cat("/history/cm9zq1x2a0004l508abcdefgh/gpu_type"),
		  "A40_48GB\n");
	CHECK_STR(cat("/history/a100-1/cost"), "0.0000\n");
	cache_history_add(cache, "no-such-pod"); /* nothing to add */
	CHECK(list_count("/history") == 3);

	/* Root. */
	CHECK(list_count("/") ==
	      14); /* 9, ssh_keys plan disks disk_offers budget */
	CHECK_STR(cat("/config"), "");
	CHECK_STR(cat("/nope"), "<errno 2>");
	CHECK(strstr(cat("/stats"), "cache_hits") != NULL);

	tree_free(tree);
	template_store_destroy(&tmpl);
	cache_free(cache);
	http_free(http);

	cache_behaviour();
	log_shutdown();
	return t_done();
}
