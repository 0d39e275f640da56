/* watchers.h — a list of callbacks told when something changes (a job's
 * output or end, an SSH command's), for FUSE poll. One implementation for
 * every owner: the owner's mutex guards the list and its condition
 * variable wakes whoever waits for a call under way to finish, so that
 * once watchers_remove returns, the removed callback is not running and
 * will not be called again (unless it is the very call that removes it).
 * Callbacks run with no lock of the owner's held. */
#ifndef PRIMEFS_WATCHERS_H
#define PRIMEFS_WATCHERS_H

#include <pthread.h>
#include <stdbool.h>

struct watcher;

struct watchers {
	struct watcher *head;
	int next_id;
	bool notifying; /* a watchers_notify is calling callbacks */
	pthread_t notifier;
};

void watchers_init(struct watchers *w);
/* Frees the list (no call may be under way). */
void watchers_free(struct watchers *w);
/* With the owner's mutex: adds fn(arg), returns its id (> 0). */
int watchers_add(struct watchers *w, void (*fn)(void *arg), void *arg);
/* With mu (the owner's) held: removes id, then waits on cond until no
 * other thread is calling callbacks. */
void watchers_remove(struct watchers *w, int id, pthread_mutex_t *mu,
		     pthread_cond_t *cond);
/* With mu held, returns with it held: calls every callback with mu
 * released, one notifier at a time (a second waits on cond), then
 * broadcasts cond. */
void watchers_notify(struct watchers *w, pthread_mutex_t *mu,
		     pthread_cond_t *cond);

#endif
