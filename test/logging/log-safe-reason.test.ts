import t from 'tap'
import { logSafeReason } from '../../src/logging/log-safe-reason.ts'

const columns = new Set(['lastname', 'lead', 'emailaddress1'])

t.test('a refused value quoted by Dynamics is replaced; the column and table it names stay', async (t) => {
  t.equal(
    logSafeReason("The length of the 'lastname' attribute of the 'lead' entity exceeded the maximum allowed length of '100'. Value: 'Smith-Jones of Kensington'", columns),
    "The length of the 'lastname' attribute of the 'lead' entity exceeded the maximum allowed length of '100'. Value: '<value>'"
  )
})

t.test('every kind of quote is a value unless the caller knows the name', async (t) => {
  t.equal(logSafeReason('Duplicate "Ann Smith" and ‘Bob’ and “Carol”'), 'Duplicate "<value>" and ‘<value>’ and “<value>”')
  t.equal(logSafeReason("'lastname' is required"), "'<value>' is required", 'a name the caller did not give is not kept')
})

t.test('emails are replaced, quoted or not', async (t) => {
  t.equal(logSafeReason('A record with ann.smith+x@example.co.uk already exists'), 'A record with <email> already exists')
  t.equal(logSafeReason("A record with 'ann@example.com' exists", columns), "A record with '<value>' exists")
})

t.test('runs of four or more digits are replaced; small numbers, record ids and Dataverse codes stay', async (t) => {
  t.equal(logSafeReason('Phone 0207 946 0958 refused, postcode 90210'), 'Phone <digits> 946 <digits> refused, postcode <digits>')
  t.equal(
    logSafeReason('Error 0x80040203 on lead with Id 5f0c2a4e-1b2c-4d3e-8f9a-0123456789ab after 3 tries (HTTP 400)'),
    'Error 0x80040203 on lead with Id 5f0c2a4e-1b2c-4d3e-8f9a-0123456789ab after 3 tries (HTTP 400)'
  )
})

t.test('a message with nothing personal is unchanged', async (t) => {
  const message = 'Entity Id must be specified for Update'
  t.equal(logSafeReason(message), message)
})
