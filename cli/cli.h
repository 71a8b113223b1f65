#ifndef QS_CLI_H
#define QS_CLI_H
#endif
