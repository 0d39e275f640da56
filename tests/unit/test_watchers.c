/* test_watchers.c — src/base/watchers.c: every watcher is called, one may
 * remove itself from its own call, and a remove from another thread waits
 * for a call under way to end. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "t.h"
#include "watchers.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct watchers ws;

static atomic_int calls_a, calls_b;
static int self_id;

static void count_a(void *arg)
{
	(void)arg;
	atomic_fetch_add(&calls_a, 1);
}

static void count_b(void *arg)
{
	(void)arg;
	atomic_fetch_add(&calls_b, 1);
}

static void remove_self(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	watchers_remove(&ws, self_id, &mu, &cond); /* must not wait on itself */
	pthread_mutex_unlock(&mu);
}

static atomic_int in_call, let_go, removed;

static void slow(void *arg)
{
	(void)arg;
	atomic_store(&in_call, 1);
	while (!atomic_load(&let_go)) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&in_call, 0);
}

static void *notifier(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	watchers_notify(&ws, &mu, &cond);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *remover(void *arg)
{
	int id = *(int *)arg;
	pthread_mutex_lock(&mu);
	watchers_remove(&ws, id, &mu, &cond);
	pthread_mutex_unlock(&mu);
	CHECK(atomic_load(&in_call) == 0); /* the call had ended */
	atomic_store(&removed, 1);
	return NULL;
}

int main(void)
{
	watchers_init(&ws);
	pthread_mutex_lock(&mu);
	int a = watchers_add(&ws, count_a, NULL);
	int b = watchers_add(&ws, count_b, NULL);
	CHECK(a > 0 && b > 0 && a != b);
	watchers_notify(&ws, &mu, &cond);
	CHECK(atomic_load(&calls_a) == 1 && atomic_load(&calls_b) == 1);
	watchers_remove(&ws, a, &mu, &cond);
	watchers_notify(&ws, &mu, &cond);
	CHECK(atomic_load(&calls_a) == 1 && atomic_load(&calls_b) == 2);
	watchers_remove(&ws, b, &mu, &cond);

	self_id = watchers_add(&ws, remove_self, NULL);
	pthread_mutex_unlock(&mu);
	notifier(NULL); /* returns: the watcher removed itself */
	pthread_mutex_lock(&mu);
	watchers_notify(&ws, &mu, &cond); /* nobody left */
	int s = watchers_add(&ws, slow, NULL);
	pthread_mutex_unlock(&mu);

	pthread_t tn, tr;
	pthread_create(&tn, NULL, notifier, NULL);
	while (!atomic_load(&in_call)) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	pthread_create(&tr, NULL, remover, &s);
	struct timespec ts = {0, 100000000};
	nanosleep(&ts, NULL);
	CHECK(!atomic_load(&removed)); /* waits while the call runs */
	atomic_store(&let_go, 1);
	pthread_join(tn, NULL);
	pthread_join(tr, NULL);
	CHECK(atomic_load(&removed));
	watchers_free(&ws);
	return t_done();
}
