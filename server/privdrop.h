/*
 * Giving up root once the privileged sockets are bound.
 *
 * The collector needs root for one thing only: binding the trap port 162.
 * Started as root, it binds, then becomes traps.user for good (groups,
 * gid, uid), before it opens the database or parses a single packet.
 * Under systemd the better way is never to be root at all: User=tocsin
 * with AmbientCapabilities=CAP_NET_BIND_SERVICE, which is given up as
 * well once the sockets are bound.
 */
#ifndef TOCSIN_PRIVDROP_H
#define TOCSIN_PRIVDROP_H

/*
 * Become user (and its primary group, no supplementary groups) for good,
 * with no_new_privs set, so that nothing executed could gain any back.
 * 0, -ENOENT when there is no such user, -EPERM when root could be
 * regained afterwards, or another -errno.
 */
int privdrop_to_user(const char *user);

/*
 * Give up every capability (effective, permitted, inheritable, ambient):
 * started without root but with CAP_NET_BIND_SERVICE (systemd's
 * AmbientCapabilities=), it is needed only until port 162 is bound.
 * Sets no_new_privs too.  0 or -errno.
 */
int privdrop_capabilities(void);

#endif
