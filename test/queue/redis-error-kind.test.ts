import t from 'tap'
import { ReplyError } from 'ioredis'
import { isTransientRedisError } from '../../src/queue/redis-error-kind.ts'

/** Which Redis answers mean "not now" (keep the work and retry) and which mean "never" (park it). */

const reply = (message: string) => new ReplyError(message)

t.test('Redis answers that mean "not now" are transient', async (t) => {
  for (const message of [
    'OOM command not allowed when used memory > \'maxmemory\'.',
    'LOADING Redis is loading the dataset in memory',
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    'READONLY You can\'t write against a read only replica.',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to \'no\'.',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'MOVED 3999 127.0.0.1:6381',
    'NOREPLICAS Not enough good replicas to write.',
    'MISCONF Redis is configured to save RDB snapshots, but it\'s currently unable to persist to disk.',
    'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
    // BullMQ's adds are Lua scripts: the refusal comes wrapped in the script's error.
    'ERR Error running script (call to f_1234): @user_script:88: -OOM command not allowed when used memory > \'maxmemory\'.',
    'ERR Error running script (call to f_1234): @user_script:12: @user_script: 12: -READONLY You can\'t write against a read only replica.'
  ]) t.ok(isTransientRedisError(reply(message)), message)
})

t.test('a broken or reset link is transient', async (t) => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  t.ok(isTransientRedisError(reset))
  t.ok(isTransientRedisError(new Error('Connection is closed.')))
  t.ok(isTransientRedisError(new Error('Stream isn\'t writeable and enableOfflineQueue options is false')))
  t.ok(isTransientRedisError(new Error('Command timed out')))
  t.ok(isTransientRedisError(Object.assign(new Error('connect failed'), { code: 'ECONNREFUSED' })))
  t.ok(isTransientRedisError(reply('ERR max number of clients reached')))
  t.ok(isTransientRedisError('a string thrown'), 'something that is not even an Error is not proof of a permanent refusal')
})

t.test('refusals of the command or its data are permanent', async (t) => {
  t.notOk(isTransientRedisError(new Error('Custom Id cannot be integers')), 'BullMQ refuses a job id')
  t.notOk(isTransientRedisError(new Error('Priority should be between 0 and 2097152')))
  t.notOk(isTransientRedisError(reply('WRONGTYPE Operation against a key holding the wrong kind of value')))
  t.notOk(isTransientRedisError(reply('ERR syntax error')))
  t.notOk(isTransientRedisError(reply('ERR Error running script (call to f_1): @user_script:3: user_script:3: attempt to compare nil with number')))
  t.notOk(isTransientRedisError(new Error('BUSYNESS and OOMPH are no error codes')), 'codes match whole words only')
  t.notOk(isTransientRedisError(new Error('the queue is closed for job data that connects nothing')), 'words like "closed" or "connect" alone are no link failure')
})
