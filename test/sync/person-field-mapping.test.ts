import t from 'tap'
import { normaliseEmail, toDynamicsRecord } from '../../src/sync/person-field-mapping.ts'

t.test('a lead gets the documented default mapping, trimmed, empty values left out', async (t) => {
  const record = toDynamicsRecord({ email: ' Ann@Example.com ', firstName: 'Ann', lastName: 'Lee', company: 'Acme', title: '', phone: null, country: 'FR' }, 'Lead', undefined)
  t.same(record, { emailaddress1: 'Ann@Example.com', firstname: 'Ann', lastname: 'Lee', companyname: 'Acme', address1_country: 'FR' })
})

t.test('a contact has no company text column (parentcustomerid is an account lookup) and the owner is bound', async (t) => {
  const owner = '2f6a3c55-0000-4000-8000-000000000001'
  const record = toDynamicsRecord({ email: 'a@b.c', company: 'Acme', fax: '1' }, 'Contact', owner)
  t.same(record, { emailaddress1: 'a@b.c', 'ownerid@odata.bind': `/systemusers(${owner})` })
})

t.test('emails are compared in one canonical form', async (t) => {
  t.equal(normaliseEmail('  Ann@Example.COM '), 'ann@example.com')
  t.equal(normaliseEmail('no-at-sign'), undefined)
  t.equal(normaliseEmail(42), undefined)
})
