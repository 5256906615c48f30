//! RESP command errors: every `-ERR ...`, `-WRONGTYPE ...`, `-NOAUTH ...` reply text this
//! server sends, in one place.
//!
//! Owns: [`RespError`] (one named variant per error redis-server 7.0 gives, with its arguments)
//! and its wire text ([`RespError::fixed`] for the texts without arguments, `Display` for the
//! rest). Must not touch: when an error is raised (the command groups decide), framing errors
//! (`frame::ProtoError`, which close the connection).
//!
//! Invariants: the text is redis's to the byte, so client libraries that match on it keep
//! working; a fixed text has no `\r` or `\n` (the encoder writes it as is), a text that quotes
//! client bytes has them replaced by spaces when encoded (`frame::encode_error`).

use crate::store::StoreError;

/// A command error reply. `Display` is the text after `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespError {
    /// `ERR syntax error`
    Syntax,
    /// `NOGROUP the consumer group this client was blocked on no longer exists`
    NoGroupBlocked,
    /// `ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.`
    XGroupNeedsKey,
    /// `BUSYGROUP Consumer Group name already exists`
    BusyGroup,
    /// `ERR value for ENTRIESREAD must be positive or -1`
    EntriesReadNegative,
    /// `ERR Missing GROUP option for XREADGROUP`
    XReadGroupMissingGroup,
    /// `NOGROUP No such key '<key>' or consumer group '<group>' in XREADGROUP with GROUP option`
    NoGroupRead(String, String),
    /// `NOGROUP No such key '<key>' or consumer group '<group>'`
    NoGroup(String, String),
    /// `NOGROUP No such consumer group '<group>' for key name '<key>'`
    NoGroupForKey(String, String),
    /// `ERR <text>`: an option's own error text (XCLAIM's `Invalid ... argument for XCLAIM`)
    StreamArg(&'static str),
    /// `ERR Unrecognized XCLAIM option '<opt>'`
    XClaimOption(String),
    /// `ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.`
    XReadGroupOption,
    /// `ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.`
    XReadNoAckOption,
    /// `ERR <cmd> command is not allowed with BLOCK option from scripts`
    BlockInScript(String),
    /// `ERR Invalid stream ID specified as stream command argument`
    StreamIdInvalid,
    /// `ERR The ID specified in XADD is equal or smaller than the target stream top item`
    XAddIdTooSmall,
    /// `ERR The ID specified in XADD must be greater than 0-0`
    XAddIdZero,
    /// `ERR The stream has exhausted the last possible ID, unable to add more items`
    StreamExhausted,
    /// `ERR The MAXLEN argument must be >= 0.`
    StreamMaxLenNegative,
    /// `ERR The LIMIT argument must be >= 0.`
    StreamLimitNegative,
    /// `ERR syntax error, MAXLEN and MINID options at the same time are not compatible`
    TrimBothStrategies,
    /// `ERR syntax error, LIMIT cannot be used without specifying a trimming strategy`
    LimitWithoutStrategy,
    /// `ERR syntax error, XTRIM must be called with a trimming strategy`
    XTrimNoStrategy,
    /// `ERR syntax error, LIMIT cannot be used without the special ~ option`
    LimitWithoutApprox,
    /// `ERR invalid start ID for the interval`
    IntervalStartInvalid,
    /// `ERR invalid end ID for the interval`
    IntervalEndInvalid,
    /// `ERR The ID specified in XSETID is smaller than the target stream top item`
    XSetIdTooSmall,
    /// `ERR The entries_added specified in XSETID is smaller than the target stream length`
    XSetIdEntriesAdded,
    /// `ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id`
    XSetIdBelowGivenMaxDeleted,
    /// `ERR entries_added must be positive`
    EntriesAddedNegative,
    /// `ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.`
    XReadUnbalanced,
    /// `ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.`
    XReadGreaterId,
    /// `ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.`
    XReadGroupDollar,
    /// `ERR timeout is not an integer or out of range`
    TimeoutNotInteger,
    /// `WRONGTYPE Key is not a valid HyperLogLog string value.`
    HllInvalid,
    /// `INVALIDOBJ Corrupted HLL object detected`
    HllCorrupt,
    /// `ERR The specified key does not exist` (PFDEBUG)
    PfDebugNoKey,
    /// `ERR HLL encoding is not sparse` (PFDEBUG DECODE)
    HllNotSparse,
    /// `ERR Unknown PFDEBUG subcommand '<sub>'`
    PfDebugUnknown(String),
    /// `TESTFAILED <why>` (PFSELFTEST)
    HllTestFailed(String),
    /// `ERR invalid longitude,latitude pair <lon>,<lat>` (`%f,%f`)
    GeoInvalidPair(String),
    /// `ERR unsupported unit provided. please use M, KM, FT, MI`
    GeoUnit,
    /// `ERR need numeric <radius|width|height>`
    GeoNeedNumeric(&'static str),
    /// `ERR radius cannot be negative`
    GeoRadiusNegative,
    /// `ERR height or width cannot be negative`
    GeoBoxNegative,
    /// `ERR could not decode requested zset member`
    GeoMember,
    /// `ERR COUNT must be > 0`
    GeoCountNotPositive,
    /// `ERR <what> is not compatible with WITHDIST, WITHHASH and WITHCOORD options`
    GeoStoreWith(&'static str),
    /// `ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for <cmd>`
    GeoFrom(String),
    /// `ERR exactly one of BYRADIUS and BYBOX can be specified for <cmd>`
    GeoBy(String),
    /// `ERR the ANY argument requires COUNT argument`
    GeoAnyNeedsCount,
    /// `ERR value is not an integer or out of range`
    NotInteger,
    /// `ERR value is not a valid float`
    NotFloat,
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`
    WrongType,
    /// `ERR increment or decrement would overflow`
    Overflow,
    /// `ERR decrement would overflow` (DECRBY of `i64::MIN`)
    DecrementOverflow,
    /// `ERR increment would produce NaN or Infinity`
    NanOrInfinity,
    /// `ERR value is NaN or Infinity` (HINCRBYFLOAT's increment)
    ValueNanOrInfinity,
    /// `ERR invalid expire time in '<cmd>' command`
    InvalidExpire(&'static str),
    /// `ERR no such key`
    NoSuchKey,
    /// `ERR offset is out of range`
    OffsetOutOfRange,
    /// `ERR string exceeds maximum allowed size (proto-max-bulk-len)`
    StringTooLong,
    /// `OOM command not allowed when used memory > 'maxmemory'.`
    OutOfMemory,
    /// `ERR wrong number of arguments for '<cmd>' command`
    WrongArity(&'static str),
    /// `ERR wrong number of arguments for '<cmd>|<sub>' command`
    WrongSubcommandArity(&'static str, &'static str),
    /// `ERR unknown command '<name>', with args beginning with: <args>` (`args`: each argument
    /// quoted and followed by a space, as `command::unknown_command` builds it).
    UnknownCommand {
        /// The name as sent (cut like redis's `%.128s`).
        name: String,
        /// The quoted first arguments.
        args: String,
    },
    /// `ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
    UnknownSubcommand(String, &'static str),
    /// `ERR invalid cursor`
    InvalidCursor,
    /// `ERR DB index is out of range`
    DbOutOfRange,
    /// `ERR source and destination objects are the same`
    SameObject,
    /// `ERR value is out of range` (a count that would overflow)
    ValueOutOfRange,
    /// `ERR value is out of range, must be positive` (the count of the pops)
    MustBePositive,
    /// `ERR value is out of range, value must between ...` (LPOS RANK of `i64::MIN`)
    RankOutOfRange,
    /// `ERR numkeys should be greater than 0`
    NumKeysNotPositive,
    /// `ERR Number of keys can't be greater than number of args` (SINTERCARD)
    TooManyKeys,
    /// `ERR at least 1 input key is needed for '<cmd>' command` (ZUNION family)
    NeedInputKey(&'static str),
    /// `ERR LIMIT can't be negative`
    LimitNegative,
    /// `ERR COUNT can't be negative`
    CountNegative,
    /// `ERR MAXLEN can't be negative`
    MaxLenNegative,
    /// `ERR count should be greater than 0`
    CountNotPositive,
    /// `ERR RANK can't be zero: ...`
    RankZero,
    /// `ERR index out of range`
    IndexOutOfRange,
    /// `ERR hash value is not an integer`
    HashNotInteger,
    /// `ERR hash value is not a float`
    HashNotFloat,
    /// `ERR min or max is not a float`
    MinMaxNotFloat,
    /// `ERR min or max not valid string range item`
    MinMaxNotLex,
    /// `ERR weight value is not a float`
    WeightNotFloat,
    /// `ERR resulting score is not a number (NaN)`
    ScoreNan,
    /// `ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX`
    LimitWithoutBy,
    /// `ERR syntax error, WITHSCORES not supported in combination with BYLEX`
    WithScoresByLex,
    /// `ERR XX and NX options at the same time are not compatible` (ZADD)
    XxAndNx,
    /// `ERR GT, LT, and/or NX options at the same time are not compatible` (ZADD)
    GtLtNx,
    /// `ERR INCR option supports a single increment-element pair`
    IncrOnePair,
    /// `ERR NX and XX, GT or LT options at the same time are not compatible` (EXPIRE)
    ExpireNxAndOthers,
    /// `ERR GT and LT options at the same time are not compatible` (EXPIRE)
    ExpireGtAndLt,
    /// `ERR Unsupported option <opt>` (EXPIRE)
    UnsupportedOption(String),
    /// `ERR timeout is not a float or out of range`
    TimeoutNotFloat,
    /// `ERR timeout is negative`
    TimeoutNegative,
    /// `ERR timeout is out of range`
    TimeoutOutOfRange,
    /// `ERR Client names cannot contain spaces, newlines or special characters.`
    InvalidClientName,
    /// `ERR Unrecognized option '<opt>'` (CLIENT SETINFO)
    UnrecognizedOption(String),
    /// `ERR Protocol version is not an integer or out of range`
    ProtocolVersion,
    /// `NOPROTO unsupported protocol version`
    NoProto,
    /// `ERR Syntax error in HELLO option '<opt>'`
    HelloOption(String),
    /// `NOAUTH HELLO must be called with the client already authenticated, ...`
    HelloNoAuth,
    /// `NOAUTH Authentication required.`
    NoAuth,
    /// `NOPERM this user has no permissions to run the '<cmd>' command`
    NoPerm(&'static str),
    /// `WRONGPASS invalid username-password pair or user is disabled.`
    WrongPass,
    /// `ERR AUTH <password> called without any password configured for the default user. ...`
    AuthNotConfigured,
    /// `ERR command '<cmd>' is not handled by its group`: the table's group column and the
    /// group's handler disagree (a bug, answered instead of a panic).
    NotInGroup(&'static str),
    /// A handler read an argument past the end (a bug the arity check should have made
    /// impossible): the dispatcher answers [`RespError::WrongArity`] for the command instead.
    MissingArgument,
    /// `ERR MULTI calls can not be nested`
    MultiNested,
    /// `ERR EXEC without MULTI`
    ExecWithoutMulti,
    /// `ERR DISCARD without MULTI`
    DiscardWithoutMulti,
    /// `ERR WATCH inside MULTI is not allowed`
    WatchInsideMulti,
    /// `EXECABORT Transaction discarded because of previous errors.`
    ExecAbort,
    /// `ERR Command not allowed inside a transaction` (redis's `no_multi` commands).
    NotInMulti,
    /// `ERR MULTI queue too large (limits.max_output_buffer)`: ringcache's own bound.
    MultiQueueTooLarge,
    /// `EXECABORT Transaction discarded because of: <error without its code>`: EXEC itself
    /// was refused (e.g. its arity) inside MULTI.
    ExecAbortBecause(Box<RespError>),
    /// `ERR snapshots are off ...`: SAVE/BGSAVE without a `[snapshot]` table.
    SnapshotsOff,
    /// `ERR Background save already in progress`
    SaveInProgress,
    /// `ERR <why the snapshot failed>`
    SaveFailed(String),
    /// `BUSYKEY Target key name already exists.`
    BusyKey,
    /// `ERR DUMP payload version or checksum are wrong`
    BadPayload,
    /// `ERR Invalid TTL value, must be >= 0`
    InvalidTtl,
    /// `ERR Invalid IDLETIME value, must be >= 0`
    IdleTimeNegative,
    /// `ERR Invalid FREQ value, must be >= 0 and <= 255`
    FreqOutOfRange,
    /// `ERR bit offset is not an integer or out of range`
    BitOffset,
    /// `ERR bit is not an integer or out of range` (SETBIT's value)
    BitValue,
    /// `ERR The bit argument must be 1 or 0.` (BITPOS)
    BitArgument,
    /// `ERR BITOP NOT must be called with a single source key.`
    BitopNotOneKey,
    /// `ERR Invalid bitfield type. ...`
    BitfieldType,
    /// `ERR Invalid OVERFLOW type specified`
    OverflowType,
    /// `ERR BITFIELD_RO only supports the GET subcommand`
    BitfieldRoGetOnly,
    /// `ERR An LFU maxmemory policy is not selected, ...` (OBJECT FREQ)
    NoLfuPolicy,
    /// `ERR An LRU maxmemory policy is not selected, ...` (OBJECT IDLETIME)
    NoLruPolicy,
    /// `ERR The specified keys must contain string values` (LCS)
    LcsNotStrings,
    /// `ERR If you want both the length and indexes, please just use IDX.` (LCS)
    LcsLenAndIdx,
    /// `ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len`
    LcsTooLarge,
    /// `ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in
    /// different slots.`: the BY pattern's keys may live on another node than the sorted key.
    SortByCrossNode,
    /// The GET equivalent of [`RespError::SortByCrossNode`].
    SortGetCrossNode,
    /// `ERR One or more scores can't be converted into double` (SORT)
    SortNotDouble,
    /// `ERR Unknown option or number of arguments for CONFIG SET - '<name>'`
    ConfigSetUnknown(String),
    /// `ERR CONFIG SET failed (possibly related to argument '<arg>') - ...`
    ConfigSet(String, String),
    /// `ERR Can't execute '<cmd>': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET
    /// are allowed in this context` (a RESP2 connection with subscriptions).
    SubscribedContext(String),
    /// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try PUBSUB HELP.`
    PubSubSyntax(String),
    /// `ERR <CMD> isn't allowed for a DENY BLOCKING client` (SSUBSCRIBE inside EXEC).
    DenyBlocking(&'static str),
    /// `ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled`
    CachingNotInMode,
    /// `ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.`
    CachingYesNeedsOptin,
    /// `ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.`
    CachingNoNeedsOptout,
    /// `ERR The client ID you want redirect to does not exist`
    NoSuchRedirect,
    /// `ERR PREFIX option requires BCAST mode to be enabled`
    PrefixNeedsBcast,
    /// `ERR You can't switch BCAST mode on/off before disabling tracking ...`
    BcastSwitch,
    /// `ERR You can't switch OPTIN/OPTOUT mode before disabling tracking ...`
    OptSwitch,
    /// `ERR You can't specify both OPTIN mode and OPTOUT mode`
    OptinAndOptout,
    /// `ERR OPTIN and OPTOUT are not compatible with BCAST`
    OptWithBcast,
    /// `ERR Prefix '<a>' overlaps with another provided prefix '<b>'. ...`
    PrefixOverlap(String, String),
    /// `ERR Prefix '<a>' overlaps with an existing prefix '<b>'. ...`
    PrefixOverlapExisting(String, String),
    /// CONFIG REWRITE: the settings live in the TOML file named (or none is served).
    ConfigRewrite(Option<String>),
    /// `NOSCRIPT No matching script. Please use EVAL.`
    NoScript,
    /// `ERR Number of keys can't be negative`
    NumKeysNegative,
    /// `BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN
    /// NOSAVE.` (true: a function runs, and the text names FUNCTION KILL)
    Busy(bool),
    /// `NOTBUSY No scripts in execution right now.`
    NotBusy,
    /// `CROSSSLOT Keys in request don't hash to the same slot` (Redis Cluster's text): the
    /// keys of a command that cannot be split live on different members, one of them remote.
    CrossSlot,
    /// A command on a remote member's key that ringcache does not forward, and why (the text
    /// after `ERR `).
    Remote(String),
    /// `UNKILLABLE Sorry the script already executed write commands against the dataset. ...`
    Unkillable,
    /// `ERR SCRIPT FLUSH only support SYNC|ASYNC option` / `ERR FUNCTION FLUSH only supports
    /// SYNC|ASYNC option` (true: FUNCTION)
    FlushOption(bool),
    /// `ERR Can not execute a script with write flag using *_ro command.`
    ScriptWriteFlagReadOnly,
    /// `ERR Error compiling script (new function): <lua error>`
    ScriptCompile(String),
    /// `ERR Unexpected engine in script shebang: <first word>`
    ShebangEngine(String),
    /// `ERR Unknown lua shebang option: <option>`
    ShebangOption(String),
    /// `ERR Invalid script shebang` (a shebang without a line break)
    ShebangInvalid,
    /// `ERR Unexpected flag in script shebang: <flag>`
    ShebangFlag(String),
    /// A script's own error reply or its failure, formatted as redis 7.0 does (code included):
    /// `<code> <message>[ script: <name>, on <source>:<line>.]`
    Script(String),
    /// `ERR Function not found`
    FunctionNotFound,
    /// `ERR Library not found`
    LibraryNotFound,
    /// `ERR Missing library metadata`
    MissingLibraryMetadata,
    /// `ERR Library name was not given`
    LibraryNameMissing,
    /// `ERR Library '<name>' already exists`
    LibraryExists(String),
    /// `ERR Function <name> already exists`
    FunctionExists(String),
    /// `ERR No functions registered`
    NoFunctions,
    /// `ERR Error registering functions: <why>`
    FunctionRegister(String),
    /// `ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.`
    RestorePolicy,
    /// `ERR Unknown argument <arg>` (FUNCTION LIST)
    UnknownArgument(String),
    /// `ERR Unknown option given: <arg>` (FUNCTION LOAD)
    UnknownOptionGiven(String),
    /// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
    SubcommandOrArity(String, &'static str),
}

/// Errors a script gets from `redis.call` / `redis.pcall` (the `err` field, code included).
pub mod in_script {
    /// The command is unknown.
    pub const UNKNOWN_COMMAND: &str = "ERR Unknown Redis command called from script";
    /// The command's arity does not match.
    pub const WRONG_ARITY: &str = "ERR Wrong number of args calling Redis command from script";
    /// The command has the `noscript` flag.
    pub const NOT_ALLOWED: &str = "ERR This Redis command is not allowed from script";
    /// A write from a read-only script (`no-writes`, EVAL_RO, FCALL_RO).
    pub const WRITE_FROM_READ_ONLY: &str =
        "ERR Write commands are not allowed from read-only scripts.";
    /// `redis.call()` without arguments.
    pub const NO_ARGUMENTS: &str =
        "ERR Please specify at least one argument for this redis lib call";
    /// An argument that is neither a string nor a number.
    pub const BAD_ARGUMENT: &str =
        "ERR Lua redis lib command arguments must be strings or integers";
    /// The instruction hook stopped the script after SCRIPT KILL / FUNCTION KILL.
    pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";
    /// The Lua VM reached its memory bound.
    pub const OUT_OF_MEMORY: &str = "ERR not enough memory";
}

impl RespError {
    /// The wire text of a variant without arguments (None for the others).
    pub fn fixed(&self) -> Option<&'static str> {
        use RespError::*;
        Some(match self {
            Syntax => "ERR syntax error",
            NoGroupBlocked => {
                "NOGROUP the consumer group this client was blocked on no longer exists"
            }
            XGroupNeedsKey => {
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
            }
            BusyGroup => "BUSYGROUP Consumer Group name already exists",
            EntriesReadNegative => "ERR value for ENTRIESREAD must be positive or -1",
            XReadGroupMissingGroup => "ERR Missing GROUP option for XREADGROUP",
            XReadGroupOption => {
                "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
            }
            XReadNoAckOption => {
                "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
            }
            StreamIdInvalid => "ERR Invalid stream ID specified as stream command argument",
            XAddIdTooSmall => {
                "ERR The ID specified in XADD is equal or smaller than the target stream top item"
            }
            XAddIdZero => "ERR The ID specified in XADD must be greater than 0-0",
            StreamExhausted => {
                "ERR The stream has exhausted the last possible ID, unable to add more items"
            }
            StreamMaxLenNegative => "ERR The MAXLEN argument must be >= 0.",
            StreamLimitNegative => "ERR The LIMIT argument must be >= 0.",
            TrimBothStrategies => {
                "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
            }
            LimitWithoutStrategy => {
                "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
            }
            XTrimNoStrategy => "ERR syntax error, XTRIM must be called with a trimming strategy",
            LimitWithoutApprox => {
                "ERR syntax error, LIMIT cannot be used without the special ~ option"
            }
            IntervalStartInvalid => "ERR invalid start ID for the interval",
            IntervalEndInvalid => "ERR invalid end ID for the interval",
            XSetIdTooSmall => {
                "ERR The ID specified in XSETID is smaller than the target stream top item"
            }
            XSetIdEntriesAdded => {
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
            }
            XSetIdBelowGivenMaxDeleted => {
                "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
            }
            EntriesAddedNegative => "ERR entries_added must be positive",
            XReadUnbalanced => {
                "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
            }
            XReadGreaterId => {
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
            }
            XReadGroupDollar => {
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."
            }
            TimeoutNotInteger => "ERR timeout is not an integer or out of range",
            HllInvalid => "WRONGTYPE Key is not a valid HyperLogLog string value.",
            HllCorrupt => "INVALIDOBJ Corrupted HLL object detected",
            PfDebugNoKey => "ERR The specified key does not exist",
            HllNotSparse => "ERR HLL encoding is not sparse",
            GeoUnit => "ERR unsupported unit provided. please use M, KM, FT, MI",
            GeoRadiusNegative => "ERR radius cannot be negative",
            GeoBoxNegative => "ERR height or width cannot be negative",
            GeoMember => "ERR could not decode requested zset member",
            GeoCountNotPositive => "ERR COUNT must be > 0",
            GeoAnyNeedsCount => "ERR the ANY argument requires COUNT argument",
            NotInteger => "ERR value is not an integer or out of range",
            NotFloat => "ERR value is not a valid float",
            WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value",
            Overflow => "ERR increment or decrement would overflow",
            DecrementOverflow => "ERR decrement would overflow",
            NanOrInfinity => "ERR increment would produce NaN or Infinity",
            ValueNanOrInfinity => "ERR value is NaN or Infinity",
            NoSuchKey => "ERR no such key",
            OffsetOutOfRange => "ERR offset is out of range",
            StringTooLong => "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            OutOfMemory => "OOM command not allowed when used memory > 'maxmemory'.",
            InvalidCursor => "ERR invalid cursor",
            DbOutOfRange => "ERR DB index is out of range",
            SameObject => "ERR source and destination objects are the same",
            ValueOutOfRange => "ERR value is out of range",
            MustBePositive => "ERR value is out of range, must be positive",
            RankOutOfRange => {
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
            }
            NumKeysNotPositive => "ERR numkeys should be greater than 0",
            TooManyKeys => "ERR Number of keys can't be greater than number of args",
            LimitNegative => "ERR LIMIT can't be negative",
            CountNegative => "ERR COUNT can't be negative",
            MaxLenNegative => "ERR MAXLEN can't be negative",
            CountNotPositive => "ERR count should be greater than 0",
            RankZero => {
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
            }
            IndexOutOfRange => "ERR index out of range",
            HashNotInteger => "ERR hash value is not an integer",
            HashNotFloat => "ERR hash value is not a float",
            MinMaxNotFloat => "ERR min or max is not a float",
            MinMaxNotLex => "ERR min or max not valid string range item",
            WeightNotFloat => "ERR weight value is not a float",
            ScoreNan => "ERR resulting score is not a number (NaN)",
            LimitWithoutBy => {
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
            }
            WithScoresByLex => {
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
            }
            XxAndNx => "ERR XX and NX options at the same time are not compatible",
            GtLtNx => "ERR GT, LT, and/or NX options at the same time are not compatible",
            IncrOnePair => "ERR INCR option supports a single increment-element pair",
            ExpireNxAndOthers => {
                "ERR NX and XX, GT or LT options at the same time are not compatible"
            }
            ExpireGtAndLt => "ERR GT and LT options at the same time are not compatible",
            MultiNested => "ERR MULTI calls can not be nested",
            CachingNotInMode => {
                "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"
            }
            CachingYesNeedsOptin => {
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
            }
            CachingNoNeedsOptout => {
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
            }
            NoSuchRedirect => "ERR The client ID you want redirect to does not exist",
            PrefixNeedsBcast => "ERR PREFIX option requires BCAST mode to be enabled",
            BcastSwitch => {
                "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."
            }
            OptSwitch => {
                "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."
            }
            OptinAndOptout => "ERR You can't specify both OPTIN mode and OPTOUT mode",
            OptWithBcast => "ERR OPTIN and OPTOUT are not compatible with BCAST",
            SnapshotsOff => {
                "ERR snapshots are off: add a [snapshot] table to the config file to use SAVE and BGSAVE"
            }
            SaveInProgress => "ERR Background save already in progress",
            BusyKey => "BUSYKEY Target key name already exists.",
            BadPayload => "ERR DUMP payload version or checksum are wrong",
            InvalidTtl => "ERR Invalid TTL value, must be >= 0",
            IdleTimeNegative => "ERR Invalid IDLETIME value, must be >= 0",
            FreqOutOfRange => "ERR Invalid FREQ value, must be >= 0 and <= 255",
            BitOffset => "ERR bit offset is not an integer or out of range",
            BitValue => "ERR bit is not an integer or out of range",
            BitArgument => "ERR The bit argument must be 1 or 0.",
            BitopNotOneKey => "ERR BITOP NOT must be called with a single source key.",
            BitfieldType => {
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
            }
            OverflowType => "ERR Invalid OVERFLOW type specified",
            BitfieldRoGetOnly => "ERR BITFIELD_RO only supports the GET subcommand",
            NoLfuPolicy => {
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
            }
            NoLruPolicy => {
                "ERR An LRU maxmemory policy is not selected, access time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
            }
            LcsNotStrings => "ERR The specified keys must contain string values",
            LcsLenAndIdx => "ERR If you want both the length and indexes, please just use IDX.",
            LcsTooLarge => {
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
            }
            SortByCrossNode => {
                "ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."
            }
            SortGetCrossNode => {
                "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots."
            }
            SortNotDouble => "ERR One or more scores can't be converted into double",
            ExecWithoutMulti => "ERR EXEC without MULTI",
            DiscardWithoutMulti => "ERR DISCARD without MULTI",
            WatchInsideMulti => "ERR WATCH inside MULTI is not allowed",
            NotInMulti => "ERR Command not allowed inside a transaction",
            ExecAbort => "EXECABORT Transaction discarded because of previous errors.",
            MultiQueueTooLarge => "ERR MULTI queue too large (limits.max_output_buffer)",
            TimeoutNotFloat => "ERR timeout is not a float or out of range",
            TimeoutNegative => "ERR timeout is negative",
            TimeoutOutOfRange => "ERR timeout is out of range",
            InvalidClientName => {
                "ERR Client names cannot contain spaces, newlines or special characters."
            }
            ProtocolVersion => "ERR Protocol version is not an integer or out of range",
            NoProto => "NOPROTO unsupported protocol version",
            HelloNoAuth => {
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
            }
            NoAuth => "NOAUTH Authentication required.",
            WrongPass => "WRONGPASS invalid username-password pair or user is disabled.",
            MissingArgument => "ERR wrong number of arguments",
            AuthNotConfigured => {
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
            }
            NoScript => "NOSCRIPT No matching script. Please use EVAL.",
            NumKeysNegative => "ERR Number of keys can't be negative",
            Busy(false) => {
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
            }
            Busy(true) => {
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
            }
            NotBusy => "NOTBUSY No scripts in execution right now.",
            CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot",
            ShebangInvalid => "ERR Invalid script shebang",
            Unkillable => {
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
            }
            ScriptWriteFlagReadOnly => {
                "ERR Can not execute a script with write flag using *_ro command."
            }
            FunctionNotFound => "ERR Function not found",
            LibraryNotFound => "ERR Library not found",
            MissingLibraryMetadata => "ERR Missing library metadata",
            LibraryNameMissing => "ERR Library name was not given",
            NoFunctions => "ERR No functions registered",
            RestorePolicy => {
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
            }
            FlushOption(false) => "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
            FlushOption(true) => "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
            InvalidExpire(_)
            | PfDebugUnknown(_)
            | HllTestFailed(_)
            | GeoInvalidPair(_)
            | GeoNeedNumeric(_)
            | GeoStoreWith(_)
            | GeoFrom(_)
            | GeoBy(_)
            | ScriptCompile(_)
            | ShebangEngine(_)
            | ShebangOption(_)
            | ShebangFlag(_)
            | Script(_)
            | LibraryExists(_)
            | FunctionExists(_)
            | FunctionRegister(_)
            | UnknownArgument(_)
            | UnknownOptionGiven(_)
            | SubcommandOrArity(..)
            | WrongArity(_)
            | WrongSubcommandArity(..)
            | UnknownCommand { .. }
            | UnknownSubcommand(..)
            | NeedInputKey(_)
            | UnsupportedOption(_)
            | UnrecognizedOption(_)
            | HelloOption(_)
            | NoPerm(_)
            | NotInGroup(_)
            | ConfigSet(..)
            | ConfigSetUnknown(_)
            | ConfigRewrite(_)
            | ExecAbortBecause(_)
            | SubscribedContext(_)
            | PubSubSyntax(_)
            | DenyBlocking(_)
            | NoGroupRead(..)
            | NoGroup(..)
            | NoGroupForKey(..)
            | StreamArg(_)
            | XClaimOption(_)
            | BlockInScript(_)
            | PrefixOverlap(..)
            | PrefixOverlapExisting(..)
            | SaveFailed(_)
            | Remote(_) => return None,
        })
    }
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use RespError::*;
        if let Some(text) = self.fixed() {
            return f.write_str(text);
        }
        match self {
            Remote(why) => write!(f, "ERR {why}"),
            InvalidExpire(cmd) => write!(f, "ERR invalid expire time in '{cmd}' command"),
            // redis's text when it has no file to rewrite, then where the settings live.
            ConfigRewrite(None) => f.write_str("ERR The server is running without a config file"),
            ConfigRewrite(Some(file)) => write!(
                f,
                "ERR CONFIG REWRITE is not supported: the settings live in {file} (TOML), which is reloaded when it changes; edit it instead"
            ),
            WrongArity(cmd) => write!(f, "ERR wrong number of arguments for '{cmd}' command"),
            WrongSubcommandArity(cmd, sub) => {
                write!(f, "ERR wrong number of arguments for '{cmd}|{sub}' command")
            }
            UnknownCommand { name, args } => write!(
                f,
                "ERR unknown command '{name}', with args beginning with: {args}"
            ),
            UnknownSubcommand(sub, cmd) => {
                write!(f, "ERR unknown subcommand '{sub}'. Try {cmd} HELP.")
            }
            NeedInputKey(cmd) => {
                write!(f, "ERR at least 1 input key is needed for '{cmd}' command")
            }
            UnsupportedOption(opt) => write!(f, "ERR Unsupported option {opt}"),
            UnrecognizedOption(opt) => write!(f, "ERR Unrecognized option '{opt}'"),
            HelloOption(opt) => write!(f, "ERR Syntax error in HELLO option '{opt}'"),
            NoPerm(cmd) => write!(
                f,
                "NOPERM this user has no permissions to run the '{cmd}' command"
            ),
            NotInGroup(cmd) => write!(f, "ERR command '{cmd}' is not handled by its group"),
            SaveFailed(why) => write!(f, "ERR {why}"),
            PfDebugUnknown(sub) => write!(f, "ERR Unknown PFDEBUG subcommand '{sub}'"),
            HllTestFailed(why) => write!(f, "TESTFAILED {why}"),
            GeoInvalidPair(pair) => write!(f, "ERR invalid longitude,latitude pair {pair}"),
            GeoNeedNumeric(what) => write!(f, "ERR need numeric {what}"),
            GeoStoreWith(what) => write!(
                f,
                "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            ),
            GeoFrom(cmd) => write!(
                f,
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {cmd}"
            ),
            GeoBy(cmd) => write!(
                f,
                "ERR exactly one of BYRADIUS and BYBOX can be specified for {cmd}"
            ),
            ExecAbortBecause(why) => {
                let text = why.to_string();
                let reason = text.split_once(' ').map_or(text.as_str(), |(_, r)| r);
                write!(f, "EXECABORT Transaction discarded because of: {reason}")
            }
            ConfigSet(arg, why) => write!(
                f,
                "ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}"
            ),
            ConfigSetUnknown(arg) => write!(
                f,
                "ERR Unknown option or number of arguments for CONFIG SET - '{arg}'"
            ),
            SubscribedContext(cmd) => write!(
                f,
                "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ),
            PubSubSyntax(sub) => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
            ),
            NoGroupRead(key, group) => write!(
                f,
                "NOGROUP No such key '{key}' or consumer group '{group}' in XREADGROUP with GROUP option"
            ),
            NoGroup(key, group) => {
                write!(f, "NOGROUP No such key '{key}' or consumer group '{group}'")
            }
            NoGroupForKey(group, key) => write!(
                f,
                "NOGROUP No such consumer group '{group}' for key name '{key}'"
            ),
            StreamArg(text) => write!(f, "ERR {text}"),
            XClaimOption(opt) => write!(f, "ERR Unrecognized XCLAIM option '{opt}'"),
            BlockInScript(cmd) => {
                write!(
                    f,
                    "ERR {cmd} command is not allowed with BLOCK option from scripts"
                )
            }
            DenyBlocking(cmd) => write!(f, "ERR {cmd} isn't allowed for a DENY BLOCKING client"),
            PrefixOverlap(a, b) => write!(
                f,
                "ERR Prefix '{a}' overlaps with another provided prefix '{b}'. Prefixes for a single client must not overlap."
            ),
            PrefixOverlapExisting(a, b) => write!(
                f,
                "ERR Prefix '{a}' overlaps with an existing prefix '{b}'. Prefixes for a single client must not overlap."
            ),
            ScriptCompile(why) => write!(f, "ERR Error compiling script (new function): {why}"),
            ShebangEngine(e) => write!(f, "ERR Unexpected engine in script shebang: {e}"),
            ShebangOption(o) => write!(f, "ERR Unknown lua shebang option: {o}"),
            ShebangFlag(flag) => write!(f, "ERR Unexpected flag in script shebang: {flag}"),
            Script(text) => f.write_str(text),
            LibraryExists(name) => write!(f, "ERR Library '{name}' already exists"),
            FunctionExists(name) => write!(f, "ERR Function {name} already exists"),
            FunctionRegister(why) => write!(f, "ERR Error registering functions: {why}"),
            UnknownArgument(o) => write!(f, "ERR Unknown argument {o}"),
            UnknownOptionGiven(o) => write!(f, "ERR Unknown option given: {o}"),
            SubcommandOrArity(sub, cmd) => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."
            ),
            // Every other variant has a fixed text (returned above).
            _ => Ok(()),
        }
    }
}

/// The reply for a store refusal.
pub(super) fn store_error(e: StoreError) -> RespError {
    match e {
        StoreError::WrongType => RespError::WrongType,
        StoreError::OutOfMemory => RespError::OutOfMemory,
    }
}
