using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Sqlite;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Storage;

/// <summary>
/// Job records in an embedded SQLite database (DATA/jobs.db, WAL journal): one row per job, the record as JSON plus
/// the columns queries need. A record is written when the job is accepted, when it starts and when it ends, so a
/// killed process leaves every finished job intact and its running/queued ones recognisable at the next start.
/// One connection behind a lock (writes are a few per job).
/// </summary>
public sealed class JobStore : IDisposable
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private readonly SqliteConnection _db;
    private readonly object _lock = new();

    public JobStore(string path)
    {
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Exec("PRAGMA journal_mode=WAL;");
        Exec("PRAGMA synchronous=NORMAL;");
        Exec("PRAGMA busy_timeout=5000;");
        Exec("""
            CREATE TABLE IF NOT EXISTS jobs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
            """);
    }

    /// <summary>The journal mode SQLite reports ("wal").</summary>
    public string JournalMode()
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode;";
            return (string)cmd.ExecuteScalar()!;
        }
    }

    public void Insert(JobInfo job)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "INSERT INTO jobs (id, status, created_at, record) VALUES ($id, $status, $created, $record);";
            cmd.Parameters.AddWithValue("$id", job.Id);
            cmd.Parameters.AddWithValue("$status", job.Status.Name());
            cmd.Parameters.AddWithValue("$created", job.CreatedAt.ToString("O"));
            cmd.Parameters.AddWithValue("$record", Serialize(job));
            cmd.ExecuteNonQuery();
        }
    }

    public void Update(JobInfo job)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "UPDATE jobs SET status = $status, record = $record WHERE id = $id;";
            cmd.Parameters.AddWithValue("$id", job.Id);
            cmd.Parameters.AddWithValue("$status", job.Status.Name());
            cmd.Parameters.AddWithValue("$record", Serialize(job));
            if (cmd.ExecuteNonQuery() != 1) throw new InvalidOperationException($"job {job.Id} is not in the store");
        }
    }

    public JobInfo? Get(string id)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT record FROM jobs WHERE id = $id;";
            cmd.Parameters.AddWithValue("$id", id);
            return cmd.ExecuteScalar() is string s ? Deserialize(s) : null;
        }
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<JobInfo> List(int limit, int offset = 0, JobStatus? status = null)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = status is null
                ? "SELECT record FROM jobs ORDER BY seq DESC LIMIT $limit OFFSET $offset;"
                : "SELECT record FROM jobs WHERE status = $status ORDER BY seq DESC LIMIT $limit OFFSET $offset;";
            cmd.Parameters.AddWithValue("$limit", limit);
            cmd.Parameters.AddWithValue("$offset", offset);
            if (status is JobStatus st) cmd.Parameters.AddWithValue("$status", st.Name());
            var list = new List<JobInfo>();
            using var r = cmd.ExecuteReader();
            while (r.Read()) list.Add(Deserialize(r.GetString(0)));
            return list;
        }
    }

    public int Count()
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT COUNT(*) FROM jobs;";
            return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// At start: every job still queued or running belonged to a process that ended without finishing it; marks
    /// them interrupted with the reason and returns them.
    /// </summary>
    public IReadOnlyList<JobInfo> MarkInterrupted(DateTimeOffset now)
    {
        var list = new List<JobInfo>();
        foreach (var status in new[] { JobStatus.Running, JobStatus.Queued })
            foreach (var job in List(int.MaxValue, 0, status))
            {
                var marked = job with
                {
                    Status = JobStatus.Interrupted, FinishedAt = now,
                    Error = status == JobStatus.Running
                        ? "interrupted: the server stopped while this job was running"
                        : "interrupted: the server stopped before this job started",
                };
                Update(marked);
                list.Add(marked);
            }
        return list;
    }

    private static string Serialize(JobInfo job) => JsonSerializer.Serialize(job with { QueuePosition = null }, Json);
    private static JobInfo Deserialize(string s) => JsonSerializer.Deserialize<JobInfo>(s, Json)!;

    private void Exec(string sql)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public void Dispose()
    {
        lock (_lock) _db.Dispose();
    }
}
