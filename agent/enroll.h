/*
 * The agent's subcommands that speak to the collector once, through a
 * deliverer: `tocsin-agent enroll ...` trades a customer's enrollment
 * token for this host's credential, `tocsin-agent rotate-credential`
 * replaces the credential (agent/credential.h has the file).
 */
#ifndef TOCSIN_ENROLL_H
#define TOCSIN_ENROLL_H

/* argv[0] is the subcommand's name; returns the exit status. */
int enroll_main(int argc, char **argv);
int enroll_rotate_main(int argc, char **argv);

#endif
