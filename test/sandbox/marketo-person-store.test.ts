import t from 'tap'
import { ActivityLog } from '../../sandbox/marketo/activity-log.ts'
import { LeadFieldCatalog } from '../../sandbox/marketo/lead-fields.ts'
import { PERSON_DETAIL_EDIT, PersonStore } from '../../sandbox/marketo/person-store.ts'

/**
 * The emulated lead database's look-ups (what Get Leads by filter type and Sync Leads' lookupField
 * answer from): indexed, so they must keep answering what a scan of every person would, across
 * every write.
 */

/** Each write a second later than the one before, so updatedAt changes with every update. */
function newStore (): PersonStore {
  let tick = 0
  return new PersonStore({ fields: new LeadFieldCatalog(), activities: new ActivityLog(), now: () => new Date(Date.UTC(2026, 11, 1, 10, 0, tick++)) })
}

/** What findBy answered before the index: every person whose value matches, lowest id first. */
function scan (store: PersonStore, field: string, value: string): number[] {
  const wanted = field === 'email' ? value.toLowerCase() : value
  return store.list()
    .filter((person) => person[field] !== undefined && person[field] !== null)
    .filter((person) => (field === 'email' ? String(person[field]).toLowerCase() : String(person[field])) === wanted)
    .map((person) => person.id)
}

const ids = (persons: ReadonlyArray<{ id: number }>): number[] => persons.map((person) => person.id)

t.test('an email look-up follows a person through create, a changed email, and remove', async (t) => {
  const store = newStore()
  const ann = store.create({ email: 'Ann.Lee@Example.com', firstName: 'Ann' })
  t.same(ids(store.findBy('email', 'ann.lee@example.com')), [ann], 'Marketo matches emails case-insensitively')

  const bo = store.create({ email: 'bo.chen@example.com' })
  t.same(ids(store.findBy('email', 'BO.CHEN@example.com')), [bo], 'a person created after the first look-up is found')

  store.update(ann, { email: 'ann.lee@contoso.com' }, PERSON_DETAIL_EDIT)
  t.same(store.findBy('email', 'ann.lee@example.com'), [], 'her old email no longer finds her')
  t.match(store.findBy('email', 'Ann.Lee@Contoso.com'), [{ id: ann, email: 'ann.lee@contoso.com', firstName: 'Ann' }], 'her new one does, with her current values')
  t.equal(store.findByEmail('ann.lee@contoso.com')?.id, ann)

  store.update(ann, { firstName: 'Anna' }, PERSON_DETAIL_EDIT)
  t.match(store.findBy('email', 'ann.lee@contoso.com'), [{ id: ann, firstName: 'Anna' }], 'another field\'s change is seen through the look-up')

  t.equal(store.remove(ann), true)
  t.same(store.findBy('email', 'ann.lee@contoso.com'), [], 'a removed person is not found')
  t.equal(store.remove(ann), false, 'nor removed twice')
  t.same(ids(store.findBy('email', 'bo.chen@example.com')), [bo], 'the others stay')
})

t.test('two persons with one email: both found, the lowest id first, also after one of them moves away and back', async (t) => {
  const store = newStore()
  const first = store.create({ email: 'twin@example.com' })
  const second = store.create({ email: 'TWIN@example.com' })
  t.same(ids(store.findBy('email', 'twin@example.com')), [first, second])

  store.update(first, { email: 'elsewhere@example.com' }, PERSON_DETAIL_EDIT)
  t.same(ids(store.findBy('email', 'twin@example.com')), [second])
  store.update(first, { email: 'twin@example.com' }, PERSON_DETAIL_EDIT)
  t.same(ids(store.findBy('email', 'twin@example.com')), [first, second], 'back in id order, so findByEmail still picks the lowest id')
  t.equal(store.findByEmail('twin@example.com')?.id, first)
})

t.test('an email cleared to null is found by nothing, and found again once set', async (t) => {
  const store = newStore()
  const id = store.create({ email: 'cleared@example.com' })
  t.same(ids(store.findBy('email', 'cleared@example.com')), [id])
  store.update(id, { email: null }, PERSON_DETAIL_EDIT)
  t.same(store.findBy('email', 'cleared@example.com'), [])
  t.same(store.findBy('email', 'null'), [], 'null is no value, not the text "null"')
  store.update(id, { email: 'set@example.com' }, PERSON_DETAIL_EDIT)
  t.same(ids(store.findBy('email', 'set@example.com')), [id])
})

t.test('id look-ups answer by the store\'s key, only for the id\'s own text', async (t) => {
  const store = newStore()
  const id = store.create({ email: 'by.id@example.com' })
  t.match(store.findBy('id', String(id)), [{ id, email: 'by.id@example.com' }])
  t.match(store.findBy('id', id), [{ id }], 'a number as well as its text')
  t.same(store.findBy('id', `${id}.0`), [], 'not another spelling of the number')
  t.same(store.findBy('id', ` ${id}`), [])
  t.same(store.findBy('id', 'abc'), [])
  store.remove(id)
  t.same(store.findBy('id', String(id)), [], 'not once removed')
})

t.test('a field first looked up after persons exist is indexed from them, and follows later writes', async (t) => {
  const store = newStore()
  const a = store.create({ email: 'a@example.com', microsoftRecordId: 'lead-1' })
  const b = store.create({ email: 'b@example.com' })
  t.same(ids(store.findBy('microsoftRecordId', 'lead-1')), [a])
  store.update(b, { microsoftRecordId: 'lead-1' }, PERSON_DETAIL_EDIT)
  t.same(ids(store.findBy('microsoftRecordId', 'lead-1')), [a, b])
  t.same(store.findBy('microsoftRecordId', 'LEAD-1'), [], 'only email is matched case-insensitively')
})

t.test('after a mixed run of writes every look-up answers what a scan of every person does', async (t) => {
  const store = newStore()
  const emails = ['one@example.com', 'Two@example.com', 'two@example.com', 'three@example.com']
  for (const email of emails) store.findBy('email', email)
  store.findBy('company', 'Contoso')
  store.findBy('updatedAt', 'none yet')
  const created: number[] = []
  for (let i = 0; i < 40; i++) {
    created.push(store.create({ email: emails[i % emails.length], company: i % 3 === 0 ? 'Contoso' : 'Fabrikam' }))
    if (i % 5 === 4) store.update(created[i - 2]!, { email: emails[(i + 1) % emails.length], company: 'Contoso' }, PERSON_DETAIL_EDIT)
    if (i % 7 === 6) store.remove(created[i - 3]!)
  }
  for (const email of [...emails, 'ONE@EXAMPLE.COM', 'missing@example.com']) {
    t.same(ids(store.findBy('email', email)), scan(store, 'email', email), `email ${email}`)
  }
  for (const company of ['Contoso', 'Fabrikam']) t.same(ids(store.findBy('company', company)), scan(store, 'company', company), `company ${company}`)
  // updatedAt, which the store itself moves on every update.
  for (const person of store.list()) {
    t.same(ids(store.findBy('updatedAt', person.updatedAt)), scan(store, 'updatedAt', person.updatedAt), `updatedAt of ${person.id}`)
  }
})
