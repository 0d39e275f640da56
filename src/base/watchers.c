/* watchers.c — see watchers.h. Callbacks are called from a copy of the
 * list, so that one may remove itself (which frees its node). */
#include "watchers.h"

#include <stdlib.h>

#include "util.h"

struct watcher {
	int id;
	void (*fn)(void *arg);
	void *arg;
	struct watcher *next;
};

void watchers_init(struct watchers *w)
{
	w->head = NULL;
	w->next_id = 1;
	w->notifying = false;
}

void watchers_free(struct watchers *w)
{
	while (w->head) {
		struct watcher *x = w->head;
		w->head = x->next;
		free(x);
	}
}

int watchers_add(struct watchers *w, void (*fn)(void *arg), void *arg)
{
	struct watcher *x = xcalloc(1, sizeof *x);
	x->fn = fn;
	x->arg = arg;
	x->id = w->next_id++;
	x->next = w->head;
	w->head = x;
	return x->id;
}

void watchers_remove(struct watchers *w, int id, pthread_mutex_t *mu,
		     pthread_cond_t *cond)
{
	for (struct watcher **pp = &w->head; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct watcher *x = *pp;
			*pp = x->next;
			free(x);
			break;
		}
	/* A call already under way may still use arg: wait it out, unless
	 * it is this very call that removes it. */
	while (w->notifying && !pthread_equal(w->notifier, pthread_self()))
		pthread_cond_wait(cond, mu);
}

void watchers_notify(struct watchers *w, pthread_mutex_t *mu,
		     pthread_cond_t *cond)
{
	size_t n = 0;
	for (struct watcher *x = w->head; x; x = x->next)
		n++;
	if (!n)
		return;
	while (w->notifying) /* one notifier at a time */
		pthread_cond_wait(cond, mu);
	w->notifying = true;
	w->notifier = pthread_self();
	struct watcher few[8];
	n = 0;
	for (struct watcher *x = w->head; x; x = x->next)
		n++;
	struct watcher *copy = n <= 8 ? few : xmalloc(n * sizeof *copy);
	n = 0;
	for (struct watcher *x = w->head; x; x = x->next)
		copy[n++] = *x;
	pthread_mutex_unlock(mu);
	for (size_t i = 0; i < n; i++)
		copy[i].fn(copy[i].arg);
	if (copy != few)
		free(copy);
	pthread_mutex_lock(mu);
	w->notifying = false;
	pthread_cond_broadcast(cond);
}
