/* Umbrella header of libe2e. */
#ifndef E2E_E2E_H
#define E2E_E2E_H

#include "common.h"
#include "clock.h"
#include "envelope.h"
#include "window.h"
#include "keyring.h"
#include "tx.h"
#include "rx.h"
#include "identity.h"
#include "txstate.h"
#include "control.h"
#include "keysvc.h"
#include "sender.h"
#include "summary.h"
#include "scopes.h"
#include "enroll.h"
#include "keystore.h"
#include "ticket.h"
#include "cred.h"
#include "revlist.h"

#define E2E_VERSION_STRING "0.1.0"

#endif
