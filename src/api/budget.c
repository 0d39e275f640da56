/* budget.c — see budget.h. The calls of the last window are kept as their
 * times, oldest first, in a ring that grows as needed (at most the budget's
 * counted calls plus the POSTs and DELETEs of an hour); each operation
 * first drops what left the window. */
#include "budget.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

struct call {
	double at;
	bool always;
};

struct budget {
	pthread_mutex_t mu;
	int per_hour;
	double window;
	struct call *v; /* ring: v[(head + i) % cap], i < len */
	size_t cap, head, len;
	int counted, always; /* in the ring */
	double hold_until;
	double last_paced;
};

static __thread unsigned long thread_calls;

struct budget *budget_new(int per_hour, double window)
{
	struct budget *b = xcalloc(1, sizeof *b);
	pthread_mutex_init(&b->mu, NULL);
	b->per_hour = per_hour > 0 ? per_hour : 1;
	b->window = window > 0 ? window : BUDGET_WINDOW;
	b->last_paced = -INFINITY;
	return b;
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->v);
	free(b);
}

static struct call *nth(struct budget *b, size_t i)
{
	return &b->v[(b->head + i) % b->cap];
}

/* Drops the calls that left the window; called with b->mu held. */
static void prune(struct budget *b, double now)
{
	while (b->len && nth(b, 0)->at <= now - b->window) {
		if (nth(b, 0)->always)
			b->always--;
		else
			b->counted--;
		b->head = (b->head + 1) % b->cap;
		b->len--;
	}
}

static void push(struct budget *b, double now, bool always)
{
	if (b->len == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct call *v = xcalloc(cap, sizeof *v);
		for (size_t i = 0; i < b->len; i++)
			v[i] = *nth(b, i);
		free(b->v);
		b->v = v;
		b->cap = cap;
		b->head = 0;
	}
	b->v[(b->head + b->len++) % b->cap] = (struct call){now, always};
	if (always)
		b->always++;
	else
		b->counted++;
	thread_calls++;
}

/* When `k` more counted calls fit under the cap: the time the oldest ones
 * that must go leave the window. Called with b->mu held. */
static double fits_at(struct budget *b, int k, double now)
{
	int over = b->counted + k - b->per_hour;
	if (over <= 0)
		return now;
	for (size_t i = 0; i < b->len; i++)
		if (!nth(b, i)->always && --over == 0)
			return nth(b, i)->at + b->window;
	return now + b->window; /* k alone is over the budget */
}

enum budget_verdict budget_take(struct budget *b, bool always, double *until)
{
	if (!b)
		return BUDGET_OK;
	double now = now_monotonic();
	pthread_mutex_lock(&b->mu);
	prune(b, now);
	enum budget_verdict v = BUDGET_OK;
	if (now < b->hold_until) {
		v = BUDGET_HELD;
		*until = b->hold_until;
	} else if (!always && b->counted >= b->per_hour) {
		v = BUDGET_SPENT;
		*until = fits_at(b, 1, now);
	} else {
		push(b, now, always);
	}
	pthread_mutex_unlock(&b->mu);
	return v;
}

void budget_hold(struct budget *b, double seconds)
{
	if (!b || !(seconds > 0))
		return;
	double until = now_monotonic() + seconds;
	pthread_mutex_lock(&b->mu);
	if (until > b->hold_until)
		b->hold_until = until;
	pthread_mutex_unlock(&b->mu);
}

enum budget_verdict budget_pace(struct budget *b, int cost, double *until)
{
	if (!b)
		return BUDGET_OK;
	if (cost < 1)
		cost = 1;
	double now = now_monotonic();
	pthread_mutex_lock(&b->mu);
	prune(b, now);
	enum budget_verdict v = BUDGET_OK;
	if (now < b->hold_until) {
		v = BUDGET_HELD;
		*until = b->hold_until;
	} else if (b->counted + cost > b->per_hour) {
		v = BUDGET_SPENT;
		*until = fits_at(b, cost, now);
	} else if (2 * (b->counted + cost) <= b->per_hour) {
		b->last_paced = now; /* not tight yet */
	} else {
		double turn = b->last_paced + cost * BUDGET_PACE * b->window /
						  (b->per_hour - b->counted);
		if (now < turn) {
			v = BUDGET_PACED;
			*until = turn;
		} else {
			b->last_paced = now;
		}
	}
	pthread_mutex_unlock(&b->mu);
	return v;
}

double budget_free_at(struct budget *b)
{
	double now = now_monotonic();
	if (!b)
		return now;
	pthread_mutex_lock(&b->mu);
	prune(b, now);
	double at = fits_at(b, 1, now);
	if (b->hold_until > at)
		at = b->hold_until;
	pthread_mutex_unlock(&b->mu);
	return at;
}

unsigned long budget_thread_calls(void)
{
	return thread_calls;
}

void budget_state(struct budget *b, struct budget_state *out)
{
	double now = now_monotonic();
	pthread_mutex_lock(&b->mu);
	prune(b, now);
	out->per_hour = b->per_hour;
	out->counted = b->counted;
	out->always = b->always;
	out->held_for = b->hold_until > now ? b->hold_until - now : 0;
	pthread_mutex_unlock(&b->mu);
}

void budget_render(void *arg, struct buf *out)
{
	struct budget_state s;
	budget_state(arg, &s);
	buf_printf(out,
		   "api_budget %d\napi_calls_hour %d\n"
		   "api_calls_hour_always %d\napi_held_s %.0f\n",
		   s.per_hour, s.counted, s.always, ceil(s.held_for));
}
