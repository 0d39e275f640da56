/* budget.h — the API's call budget (DESIGN.md, "Budgets and the API's call
 * budget"), the one place that counts calls in the rolling hour and holds
 * them back. The API allows about 1000 calls an hour: primefs sends at
 * most `per_hour` (-o api_budget, default 900) in any rolling hour,
 * counting every call but POST and DELETE (a mkdir, an rmdir, a guard:
 * those are always sent, and only shown in `stats`).
 *
 * Three rules, checked under one mutex:
 * - The cap (budget_take, for every call on its way out): a read is not
 *   sent while `per_hour` counted calls lie in the last hour.
 * - The hold: a 429 with Retry-After holds back every later call until
 *   then, however long. A read is refused at once (its caller serves the
 *   answer it holds); a POST or DELETE is told how long to wait (http.c
 *   waits it out, bounded, then sends).
 * - The pace (budget_pace, for the reads that only refresh an answer
 *   held, and for the waiters' status polls): with n counted calls in the
 *   last hour and B the budget, a paced read of k calls may start at once
 *   while n + k <= B/2 (the budget is not tight); past that, when
 *       n + k <= B  and  now >= last paced start + k * PACE * H / (B - n)
 *   (H the window, an hour; PACE = 1/4): 2 s for one call at half the
 *   budget, growing as the hour fills, so a reader polling every second
 *   settles where the spacing matches its rate, near B/(1 + PACE) = 4/5
 *   of the budget, leaving the rest to mkdir's checks and to readers
 *   holding nothing (those are capped, not paced). Freshness windows
 *   stretch instead of the budget.
 *
 * A NULL budget allows everything (unit tests). Thread-safe. */
#ifndef PRIMEFS_BUDGET_H
#define PRIMEFS_BUDGET_H

#include <stdbool.h>

#include "util.h"

#define BUDGET_DEFAULT 900
#define BUDGET_WINDOW  3600.0
#define BUDGET_PACE    0.25

enum budget_verdict {
	BUDGET_OK,    /* may go now (budget_take: counted as sent) */
	BUDGET_HELD,  /* a 429's Retry-After holds calls until *until */
	BUDGET_SPENT, /* the hour's budget is spent until *until */
	BUDGET_PACED, /* a refresh waits for its turn, at *until */
};

struct budget;

/* window: the rolling window in seconds (BUDGET_WINDOW; shorter ones
 * compress time for a benchmark). */
struct budget *budget_new(int per_hour, double window);
void budget_free(struct budget *b);

/* One call about to be sent (always: a POST or DELETE). BUDGET_OK counts
 * it; else *until (monotonic) says when it could go. A POST or DELETE only
 * ever gets BUDGET_HELD. */
enum budget_verdict budget_take(struct budget *b, bool always, double *until);
/* A 429's Retry-After: no call goes for `seconds` from now (a longer hold
 * already set stays). */
void budget_hold(struct budget *b, double seconds);
/* A paced read of about `cost` calls (see above): BUDGET_OK and its turn
 * taken, or the verdict and when to ask again in *until. */
enum budget_verdict budget_pace(struct budget *b, int cost, double *until);
/* When a read could be sent (the hold's end, the cap's next free slot),
 * now if it could at once. */
double budget_free_at(struct budget *b);
/* Calls this thread has taken so far (a fetch's cost in calls). */
unsigned long budget_thread_calls(void);

struct budget_state {
	int per_hour;
	int counted;	 /* calls in the last hour that count */
	int always;	 /* POST and DELETE in the last hour */
	double held_for; /* seconds the hold lasts still, 0 if none */
};
void budget_state(struct budget *b, struct budget_state *out);
/* Its lines for `stats`: api_budget, api_calls_hour (counted),
 * api_calls_hour_always, api_held_s. For stats_set_source. */
void budget_render(void *b, struct buf *out);

#endif
