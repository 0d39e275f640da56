/* podwait.h — the pods waited on (a job on a pod still starting), watched
 * with GET /pods/status?pod_ids=... for all of them in one call, shared by
 * every waiter: one call per PODWAIT_EVERY seconds at most, and no sooner
 * than the API's call budget allows (budget.h's pace), instead of a full
 * listing per waiter. The call is made by whichever waiter finds it due,
 * with no lock held; the others wait for its answer. FUSE-free;
 * thread-safe. */
#ifndef PRIMEFS_PODWAIT_H
#define PRIMEFS_PODWAIT_H

#include "api.h"

#define PODWAIT_EVERY 5.0 /* as the Prime CLI polls it */

struct podwait;

struct podwait *podwait_new(struct api *api);
void podwait_free(struct podwait *w);

/* What the API says of pod `id` in an answer that came after the one
 * numbered *seen (0 at first): 0, the pod's status item in *out (a pod
 * with a NULL id when the answer does not name it: gone, or unknown to
 * the status endpoint) and the answer's number in *seen; or -errno: the
 * call's error, ETIMEDOUT at `deadline` (monotonic), EINTR when
 * interrupted(arg) says so. */
int podwait_next(struct podwait *w, const char *id, unsigned long *seen,
		 double deadline, bool (*interrupted)(void *arg), void *arg,
		 struct pod *out);

#endif
