/* The subcommands of the politune CLI: each lives in its own cmd_<name>.c with its own usage
 * text, and returns the process exit status. */
#ifndef PT_CLI_COMMANDS_H
#define PT_CLI_COMMANDS_H

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;
} pt_cli_command;

int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_score(int argc, char **argv);

#endif
