import t from 'tap'
import { emailMatchKey, matchUnlinkedRecord } from '../../src/background-sync/unlinked-record-match.ts'

t.test('no Marketo person has the email: a person is created', async (t) => {
  t.same(matchUnlinkedRecord([]), { action: 'create' })
})

t.test('exactly one unlinked person has the email: the record links to it (the native sync would duplicate it)', async (t) => {
  t.same(matchUnlinkedRecord([{ marketoId: 7, linked: false }]), { action: 'link', marketoId: 7 })
})

t.test('one unlinked person beside persons linked to other records: the unlinked one is the match', async (t) => {
  t.same(matchUnlinkedRecord([{ marketoId: 3, linked: true }, { marketoId: 9, linked: false }]), { action: 'link', marketoId: 9 })
})

t.test('several unlinked persons have the email: nothing is created and the record is reported', async (t) => {
  t.same(matchUnlinkedRecord([{ marketoId: 4, linked: false }, { marketoId: 5, linked: false }, { marketoId: 6, linked: true }]),
    { action: 'report', reason: 'SEVERAL_UNLINKED_PERSONS', marketoIds: [4, 5, 6] })
})

t.test('every person with the email is linked to another record: nothing is created or taken over, the record is reported', async (t) => {
  t.same(matchUnlinkedRecord([{ marketoId: 8, linked: true }]), { action: 'report', reason: 'PERSON_LINKED_ELSEWHERE', marketoIds: [8] })
})

t.test('emails match whatever their case and surrounding spaces', async (t) => {
  t.equal(emailMatchKey('  Ada.Lovelace@Example.COM '), emailMatchKey('ada.lovelace@example.com'))
})
