/* `politune run --make-pairs`: the pairs stage's command (run_pairs.c). */
#ifndef PT_CLI_RUN_PAIRS_H
#define PT_CLI_RUN_PAIRS_H

/* argv as cmd_run got it; returns the exit status. */
int run_make_pairs_main(int argc, char **argv);

#endif
