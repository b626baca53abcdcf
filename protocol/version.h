#pragma once

#define WARDEN_VERSION "0.1.0"
