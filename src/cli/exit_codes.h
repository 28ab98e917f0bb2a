// Stable exit codes of the cadcanfs binary. They are an interface: scripts depend on
// them, so never renumber. docs/cli.md documents each one.
#ifndef CADCANFS_CLI_EXIT_CODES_H_
#define CADCANFS_CLI_EXIT_CODES_H_

namespace cadcanfs::exit_code {

inline constexpr int kOk = 0;
inline constexpr int kInternal = 1;    // a bug or an unexpected failure
inline constexpr int kUsage = 2;       // bad command line
inline constexpr int kNoVault = 3;     // vault missing, or not a cadcanfs vault
inline constexpr int kKeyProblem = 4;  // key/passphrase file missing, unreadable, loose, malformed
inline constexpr int kWrongKey = 5;    // the key does not belong to this vault
inline constexpr int kBadConfig = 6;   // config damaged, edited or of an unsupported version
inline constexpr int kNotEmpty = 7;    // init target or mountpoint is not empty
inline constexpr int kIoError = 8;     // reading or writing failed (includes ENOSPC)
inline constexpr int kExists = 9;      // refusing to overwrite an existing file
inline constexpr int kNotFound = 10;   // a plaintext path or source does not exist
inline constexpr int kMountFailed = 11;  // mounting failed (no /dev/fuse, mountpoint in use...)
inline constexpr int kStaleMount = 12;   // mountpoint is a dead FUSE mount
inline constexpr int kVaultInUse = 13;   // another process holds the vault's writer lock
inline constexpr int kNoMount = 14;      // status: no cadcanfs daemon answers at MOUNTPOINT
inline constexpr int kDamageFound = 20;  // fsck found damaged or tampered items
inline constexpr int kIncomplete = 21;   // a vault walk skipped entries it could not handle

// The access layer (docs/access-policy.md).
inline constexpr int kAuditTampered = 40;    // audit log: lines edited, removed, moved or added
inline constexpr int kBadPolicy = 41;        // the access policy file is invalid or unsafe
inline constexpr int kAuditTruncated = 42;   // audit log: last line cut off, or the log emptied
inline constexpr int kAuditOpenEnd = 43;     // audit log: intact, but no unmount line at its end
inline constexpr int kAuditUnwritable = 44;  // the audit log cannot be opened, continued or written

// Running as a service (doctor, --config).
inline constexpr int kDoctorProblems = 30;    // doctor found a problem on this system
inline constexpr int kBadServiceConfig = 31;  // --config file unreadable, loose or malformed

// OneDrive sign-in (login, and every command that reaches OneDrive).
inline constexpr int kLoginFailed = 50;           // sign-in declined, expired, refused or needed
inline constexpr int kTokenStoreUnreadable = 51;  // token file: wrong key, damaged, not a store

}  // namespace cadcanfs::exit_code

#endif  // CADCANFS_CLI_EXIT_CODES_H_
