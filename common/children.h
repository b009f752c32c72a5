/*
 * The agent's children, as one process sees them.
 *
 * The agent is a child subreaper (PR_SET_CHILD_SUBREAPER): a process that
 * a plugin started and left behind, even one that left the plugin's
 * process group or session (setsid), becomes the agent's child once its
 * parent dies, rather than init's, so that it can be found and killed
 * when its plugin's run ends (checks/run.c).  Those adopted children are
 * reaped by whoever sweeps them; the children the agent started itself
 * (a plugin, apt-get, the deliverer) are waited for by their owners, by
 * pid, and are registered here so that no sweep ever kills one or takes
 * its exit status.
 *
 * Single-threaded use: an owner registers its child right after it
 * started it, in the thread that sweeps.
 */
#ifndef TOCSIN_CHILDREN_H
#define TOCSIN_CHILDREN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Become a child subreaper; 0 or -errno. */
int children_adopt_orphans(void);

/* pid is waited for by its owner: never swept.  Owned until disowned. */
void children_own(pid_t pid);
/* The owner reaped pid (or gave up on it). */
void children_disown(pid_t pid);
bool children_owned(pid_t pid);

/*
 * The children of this process (of any of its threads) that no owner
 * registered: a malloc'ed array in *ret (NULL when there are none) and
 * its length, or -errno.  Read from /proc/self/task/.../children, which
 * the kernel fills as it goes: a list taken while children come and go
 * may miss one, so a sweep reads again until nothing is left.
 */
int children_unowned(pid_t **ret, size_t *ret_n);

#endif
